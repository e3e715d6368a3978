{{
    config(
        materialized='incremental',
        unique_key=['channel_key', 'date_key'],
        incremental_strategy='delete+insert',
        indexes=[
            {'columns': ['channel_key', 'date_key', 'product_key'], 'unique': True},
            {'columns': ['product_key']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- Mentions of each product per channel and day, and how many of them gave a price: top
-- products per channel and date range sum these few rows instead of counting mentions.
-- Incremental like rpt_channel_daily: the (channel, day) slices holding a message
-- (re)loaded since the last build are recomputed whole (so a product an edited post no
-- longer names leaves its day too).
with changed_days as (

    -- days of messages (re)loaded since the last build, from the messages and from the
    -- facts read here (a partial build may have rebuilt one and not the other)
    {{ changed_days([(ref('fct_messages'), 'date_key'), (ref('fct_product_mentions'), 'date_key')]) }}

),

mentions as (

    {{ rows_in_slices(ref('fct_product_mentions')) }}

),

final as (

    select
        channel_key,
        date_key,
        product_key,
        count(*)::integer as mention_count,
        count(*) filter (where has_price)::integer as price_count
    from mentions
    group by channel_key, date_key, product_key

)

select * from final
