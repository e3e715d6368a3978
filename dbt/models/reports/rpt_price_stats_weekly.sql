{{
    config(
        indexes=[
            {'columns': ['product_key', 'channel_key', 'week_start_date'], 'unique': True},
        ],
    )
}}

-- A product's price statistics per channel and week (Monday start): how many prices,
-- min, the exact median (the mean of the two middle prices for an even count, as
-- statistics.median), max, and the latest price (the newest post's; the higher on a
-- tie). The weekly price history reads these few rows as they are for every week wholly
-- inside its date range; the partial weeks at a range's ends fold the daily histogram
-- with the same arithmetic in the API (routes/reports.py HISTORY_SQL; tests hold the
-- two equal). Rebuilt from the weekly
-- histogram, which is small. A price covers positions [upto - price_count, upto) of
-- the week's sorted prices.
with points as (

    select * from {{ ref('rpt_price_points_weekly') }}

),

ranked as (

    select
        points.*,
        sum(price_count) over (
            partition by product_key, channel_key, week_start_date order by price_birr
        ) as upto,
        sum(price_count) over (
            partition by product_key, channel_key, week_start_date
        ) as total
    from points

),

final as (

    select
        product_key,
        channel_key,
        week_start_date,
        total::integer as price_count,
        min(price_birr) as min_price,
        -- computed in numeric, then float8 (the API's folded ranges do the same)
        ((
            min(price_birr) filter (
                where upto - price_count <= (total - 1) / 2 and (total - 1) / 2 < upto
            )
            + min(price_birr) filter (
                where upto - price_count <= total / 2 and total / 2 < upto
            )
        ) / 2)::float8 as median_price,
        max(price_birr) as max_price,
        (array_agg(price_birr order by last_posted_at desc, price_birr desc))[1]
            as latest_price,
        max(last_posted_at) as latest_at
    from ranked
    group by product_key, channel_key, week_start_date, total
    -- stored in product order: one product's rows share a few pages
    order by product_key, channel_key, week_start_date

)

select * from final
