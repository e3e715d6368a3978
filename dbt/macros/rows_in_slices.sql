{#
  The rows of `relation` in the slices an incremental report mart recomputes (the CTE
  named by `slices`, `changed_days` by default: distinct (channel_key, date_key) pairs: the days holding rows loaded since
  the model's safe point), or every row on a first build or a full refresh. `keys` are
  the relation's columns matched to the slice's channel_key and date_key (indexed on
  the relation, in that order).

  A lateral join, one index probe per slice: a join on the slices left the plan to the
  planner, which cannot know how few slices an increment touches (its estimate for the
  slices of 10,000 new messages was 5,513 instead of 9), so it read and sorted the whole
  fact table (1.2 s for rpt_channel_engagement_daily at 1M messages, docs/benchmarks.md).
#}
{% macro rows_in_slices(relation, keys=('channel_key', 'date_key'), slices='changed_days') -%}
    {%- if is_incremental() -%}
    select slice_rows.*
    from {{ slices }}
    cross join lateral (
        select *
        from {{ relation }} as slice_source
        where slice_source.{{ keys[0] }} = {{ slices }}.channel_key
            and slice_source.{{ keys[1] }} = {{ slices }}.date_key
        offset 0  -- not pulled up into a plain join: probed per slice
    ) as slice_rows
    {%- else -%}
    select * from {{ relation }}
    {%- endif -%}
{%- endmacro %}
