-- Subscribers per channel and day (the day of the scrape, Addis Ababa time): the last
-- count the day's scrapes read, the day's lowest and highest, and how many snapshots
-- were taken. What the subscribers endpoint and the dashboard's "subscribers over time"
-- read. Rebuilt every build from fct_channel_snapshots, a row per channel per scrape
-- (small). A channel that hides its count has null counts; exports carry no snapshot.
with snapshots as (

    select * from {{ ref('fct_channel_snapshots') }}

),

final as (

    select
        channel_key,
        date_key,
        (
            array_agg(subscriber_count order by observed_at desc)
                filter (where subscriber_count is not null)
        )[1] as subscriber_count,
        min(subscriber_count) as min_subscriber_count,
        max(subscriber_count) as max_subscriber_count,
        count(*)::integer as snapshot_count,
        max(observed_at) as last_observed_at
    from snapshots
    group by channel_key, date_key

)

select * from final
