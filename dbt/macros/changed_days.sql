{#
  The (channel_key, date_key) slices an incremental report mart recomputes: the days
  holding a row (re)loaded since the model's safe point, in any of `sources`, a list of
  (relation, its day column). Several sources: a partial build may have rebuilt one of
  them and not the other, so each one's new rows count. Use as the body of a CTE named
  `changed_days` (what `rows_in_slices` reads).
#}
{% macro changed_days(sources) -%}
    {%- for relation, day_column in sources %}
    select {{ 'distinct' if sources | length == 1 }}
        channel_key,
        {{ day_column }} as date_key
    from {{ relation }}
    where {{ incremental_window() }}
    {%- if not loop.last %}
    union
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
