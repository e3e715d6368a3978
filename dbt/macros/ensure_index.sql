{#
  post-hook: an index on `columns` of this model's table, created when the table has
  none with exactly those columns and method. The name is left to PostgreSQL.

  Not `create index if not exists <fixed name>`: on a full refresh of an incremental
  model dbt renames the old table to a backup before the post-hooks run, and the
  backup's index still holds the fixed name, so the new table silently got no index
  (that is how fct_messages lost its full-text index on every full refresh). Unlike the
  `indexes` config (applied only when dbt creates the table), this also reaches a table
  built before the index was added.
#}
{% macro ensure_index(columns, method='btree') -%}
    {%- set definition = 'USING ' ~ method ~ ' (' ~ (columns | join(', ')) ~ ')' -%}
    do $$
    begin
        if not exists (
            select 1
            from pg_indexes
            where schemaname = '{{ this.schema }}'
                and tablename = '{{ this.identifier }}'
                and indexdef like '%{{ definition }}'
        ) then
            create index on {{ this }} using {{ method }} ({{ columns | join(', ') }});
        end if;
    end
    $$
{%- endmacro %}
