{{
    config(
        materialized='incremental',
        unique_key=['channel_key', 'date_key'],
        incremental_strategy='delete+insert',
        indexes=[
            {'columns': ['channel_key', 'date_key']},
            {'columns': ['product_key', 'date_key']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- Every price observed for a product, per channel and day, with how often it was given:
-- a price histogram. Sellers repeat a handful of prices, so this holds the exact
-- distribution (min, median, max, every point of a strip plot) in a few rows per day,
-- and the latest price is the row with the newest post. Incremental per (channel, day)
-- like rpt_channel_daily.
with changed_days as (

    -- days of messages (re)loaded since the last build, from the messages and from the
    -- facts read here (a partial build may have rebuilt one and not the other)
    {{ changed_days([(ref('fct_messages'), 'date_key'), (ref('fct_product_prices'), 'date_key')]) }}

),

prices as (

    {{ rows_in_slices(ref('fct_product_prices')) }}

),

final as (

    select
        channel_key,
        date_key,
        product_key,
        price_birr,
        count(*)::integer as price_count,
        max(posted_at) as last_posted_at
    from prices
    where price_birr is not null  -- prices in birr (another currency keeps its own rows)
    group by channel_key, date_key, product_key, price_birr

)

select * from final
