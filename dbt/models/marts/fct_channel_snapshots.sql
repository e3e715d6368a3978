-- One row per channel per scrape: the channel's subscribers, title and description as
-- they were then, with the change since the channel's previous snapshot. Subscribers
-- over time, and engagement (views per subscriber, in fct_message_observations),
-- come from here.
with snapshots as (

    select * from {{ ref('stg_telegram_channel_snapshots') }}

),

ordered as (

    select
        snapshots.*,
        lag(subscriber_count) over by_channel as previous_subscriber_count,
        lag(observed_at) over by_channel as previous_observed_at,
        row_number() over (
            partition by channel_username order by observed_at desc
        ) = 1 as is_latest
    from snapshots
    window by_channel as (partition by channel_username order by observed_at)

),

final as (

    select
        snapshot_key,
        channel_username as channel_key,
        observed_date as date_key,
        observed_at,
        channel_id,
        channel_title,
        channel_description,
        subscriber_count,
        previous_subscriber_count,
        subscriber_count - previous_subscriber_count as subscriber_change,
        round(
            (extract(epoch from observed_at - previous_observed_at) / 86400)::numeric, 3
        )::float8 as days_since_previous,
        is_latest,
        loaded_at
    from ordered

)

select * from final
