{{
    config(
        indexes=[{'columns': ['product_key', 'channel_key']}],
    )
}}

-- The price histogram over all time (rpt_price_points_daily without the day): a
-- product's prices per channel in a few dozen rows, for the unfiltered price report.
-- A table rebuilt from the daily histogram, which is small (no fact is read).
with daily as (

    select * from {{ ref('rpt_price_points_daily') }}

),

final as (

    select
        product_key,
        channel_key,
        price_birr,
        sum(price_count)::integer as price_count,
        max(last_posted_at) as last_posted_at
    from daily
    group by product_key, channel_key, price_birr
    -- stored in product order: one product's rows share a page or two
    order by product_key, channel_key, price_birr

)

select * from final
