{{
    config(
        indexes=[{'columns': ['product_key', 'channel_key'], 'unique': True}],
    )
}}

-- Mentions of each product per channel over all time (rpt_product_daily without the
-- day), for the unfiltered top products. Rebuilt from the daily rows, which are few.
with daily as (

    select * from {{ ref('rpt_product_daily') }}

),

final as (

    select
        product_key,
        channel_key,
        sum(mention_count)::integer as mention_count,
        sum(price_count)::integer as price_count,
        min(date_key) as first_date,
        max(date_key) as last_date
    from daily
    group by product_key, channel_key

)

select * from final
