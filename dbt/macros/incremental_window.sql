{#
  One incremental pattern for every incremental model: what to (re)process, and how far
  back to look so that no row is ever skipped.

  A row's `loaded_at` is its loader transaction's start (`now()`), not its commit. A
  loader still writing while a model reads commits rows stamped *before* that read, so
  "newer than the newest row I hold" (`loaded_at > max(loaded_at)`) skips them for good.
  The lookback here is exactly as long as needed: before a model reads, its pre-hook
  notes its *safe point*, the earliest of

    - now (the model's own transaction start),
    - the start of every other open transaction in this database (a loader in flight:
      whatever it commits later is stamped at or after its start),
    - the safe points its incremental parents recorded (a parent built earlier, or in an
      older partial build, may still miss rows that this model would otherwise pass),

  and its post-hook records that point with the model, in the same transaction. The next
  build re-reads every row stamped at or after it. Rows read twice are replaced whole per
  key (delete+insert or merge on the model's unique key), so a re-read changes nothing:
  the window only has to be wide enough, never exact.

  Needs to see other sessions' `xact_start` in pg_stat_activity: the loader and dbt
  connect as the same role (as in every launch mode here), or dbt's role has
  pg_read_all_stats.
#}

{% macro watermarks_relation() -%}
    staging.dbt_incremental_watermarks
{%- endmacro %}


{# on-run-start: the bookkeeping table (idempotent). #}
{% macro create_watermarks_table() -%}
    create table if not exists {{ watermarks_relation() }} (
        model_name text primary key,
        processed_from timestamptz not null,
        invocation_id text not null,
        recorded_at timestamptz not null default now()
    )
{%- endmacro %}


{# The incremental parents of the model being built (their watermarks bound ours). #}
{% macro _incremental_parents() -%}
    {%- set parents = [] -%}
    {%- for unique_id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node and node.config.materialized == 'incremental' -%}
            {%- do parents.append(node.alias or node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(parents) }}
{%- endmacro %}


{# pre-hook: note the safe point before the model reads anything. #}
{% macro note_safe_point() -%}
    {%- set parents = _incremental_parents() -%}
    select set_config('tgmed.safe_point', least(
        now(),
        (
            select min(xact_start)
            from pg_stat_activity
            where datname = current_database()
                and backend_type = 'client backend'  -- not autovacuum's own work
                and pid <> pg_backend_pid()
                and xact_start is not null
        ),
        (
            select min(processed_from)
            from {{ watermarks_relation() }}
            where model_name in ({% for p in parents %}'{{ p }}'{{ ", " if not loop.last }}{% endfor %}{% if not parents %}null{% endif %})
        )
    )::text, true)
{%- endmacro %}


{# post-hook: record it with the model (same transaction: both or neither commit). #}
{% macro record_safe_point() -%}
    insert into {{ watermarks_relation() }} (model_name, processed_from, invocation_id)
    values ('{{ this.identifier }}', current_setting('tgmed.safe_point')::timestamptz, '{{ invocation_id }}')
    on conflict (model_name) do update set
        processed_from = excluded.processed_from,
        invocation_id = excluded.invocation_id,
        recorded_at = now()
{%- endmacro %}


{# The rows to (re)process: every row at or after this model's last safe point
   (everything on a first build or a full refresh). Put it in the WHERE clause of the
   model's first read of its input; the column is the raw row's loaded_at.

   The point is read when the model compiles and written into the SQL as a literal. As
   a subquery (`loaded_at > (select max(loaded_at) from this)`) its value is unknown
   when PostgreSQL plans the statement, so the planner assumed a third of the table
   matches and planned hash joins and sorts over hundreds of thousands of rows for an
   increment of a few thousand (docs/benchmarks.md); with the literal it reads the
   column's statistics and plans for the rows that really match. #}
{% macro incremental_window(column='loaded_at') -%}
    {%- if is_incremental() -%}
        {%- set since = '-infinity' -%}
        {%- if execute -%}
            {#- a table built before the watermarks existed: from its newest row, if it
                has the column, else from the beginning -#}
            {%- set own_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
            {%- set query -%}
                select coalesce(
                    (select processed_from from {{ watermarks_relation() }}
                     where model_name = '{{ this.identifier }}'),
                    {% if 'loaded_at' in own_columns -%}
                    (select max(loaded_at) from {{ this }}),
                    {% endif -%}
                    '-infinity'
                )::text
            {%- endset -%}
            {%- set since = run_query(query).columns[0].values()[0] -%}
        {%- endif -%}
        {{ column }} >= '{{ since }}'::timestamptz
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{# post-hook: statistics for a table that has none (the first build, a full refresh:
   dbt creates tables without them and autovacuum comes later, so the next build's
   plans would rest on guesses). An incremental write leaves the existing ones, which
   autovacuum keeps up to date. #}
{% macro analyze_if_new() -%}
    do $$
    begin
        if (
            select last_analyze is null and last_autoanalyze is null
            from pg_stat_user_tables
            where relid = '{{ this }}'::regclass
        ) then
            analyze {{ this }};
        end if;
    end
    $$
{%- endmacro %}
