{#
  on-run-end: one row in marts.dbt_builds per dbt invocation that wrote anything (a
  model, a seed or a snapshot), written after every node of it finished. The API's
  cache is keyed on the newest row: any build, full or partial (`--select
  fct_product_prices`), and any seed change (which only reaches the marts through a
  `dbt seed`/`build`) changes the key, so no answer outlives the marts it came from.
#}
{% macro record_build() -%}
    {%- set written = [] -%}
    {%- for result in results -%}
        {%- if result.node.resource_type in ('model', 'seed', 'snapshot')
              and result.status in ('success', 'pass') -%}
            {%- do written.append(result.node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    create table if not exists marts.dbt_builds (
        invocation_id text primary key,
        command text not null,
        finished_at timestamptz not null default clock_timestamp(),
        nodes_written integer not null,
        nodes text[] not null
    );
    {% if written %}
    insert into marts.dbt_builds (invocation_id, command, nodes_written, nodes)
    values (
        '{{ invocation_id }}',
        '{{ flags.WHICH }}',
        {{ written | length }},
        array[{% for name in written %}'{{ name }}'{{ ", " if not loop.last }}{% endfor %}]::text[]
    )
    on conflict (invocation_id) do nothing;
    {% endif %}
{%- endmacro %}
