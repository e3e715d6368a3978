{{
    config(
        indexes=[{'columns': ['product_key', 'week_start_date']}],
    )
}}

-- The price histogram per product, channel and week (Monday start): the unfiltered
-- weekly price history reads a few hundred rows of it instead of folding the daily
-- histogram per request. Rebuilt from rpt_price_points_daily, which is small.
with daily as (

    select * from {{ ref('rpt_price_points_daily') }}

),

dates as (

    select date_key, week_start_date from {{ ref('dim_dates') }}

),

final as (

    select
        daily.product_key,
        daily.channel_key,
        dates.week_start_date,
        daily.price_birr,
        sum(daily.price_count)::integer as price_count,
        max(daily.last_posted_at) as last_posted_at
    from daily
    inner join dates using (date_key)
    group by daily.product_key, daily.channel_key, dates.week_start_date, daily.price_birr
    -- stored in product order: one product's rows share a few pages
    order by daily.product_key, daily.channel_key, dates.week_start_date

)

select * from final
