{{
    config(
        materialized='incremental',
        unique_key='observation_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['observation_key'], 'unique': True},
            {'columns': ['message_key', 'observed_at']},
            {'columns': ['date_key']},
            {'columns': ['loaded_at']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- One row per reading of a post's counts: every scrape that read the post wrote one
-- (its first read and each re-read of the refresh window), so views growth after a
-- post can be modelled (hours_since_post against view_count); fct_messages keeps only
-- the newest counts. Incremental: observations loaded since the last build are added
-- (readings never change, so a merge only guards against a re-load).
with observations as (

    select * from {{ ref('stg_telegram_message_observations') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
    {% endif %}

),

snapshots as (

    select channel_username, observed_at, subscriber_count
    from {{ ref('stg_telegram_channel_snapshots') }}
    where subscriber_count is not null

),

with_subscribers as (

    select
        observations.*,
        -- the channel's subscribers at the time of the reading: its latest snapshot
        -- taken at or before it (a scrape takes the snapshot before reading posts)
        (
            select snapshots.subscriber_count
            from snapshots
            where snapshots.channel_username = observations.channel_username
                and snapshots.observed_at <= observations.observed_at
            order by snapshots.observed_at desc
            limit 1
        ) as subscriber_count
    from observations

),

final as (

    select
        observation_key,
        message_key,
        channel_username as channel_key,
        observed_date as date_key,
        (posted_at at time zone 'Africa/Addis_Ababa')::date as posted_date_key,
        message_id,
        posted_at,
        observed_at,
        -- never negative: a post read seconds after it appeared, by a host whose clock
        -- runs behind Telegram's, is a reading at hour 0
        greatest(
            round((extract(epoch from observed_at - posted_at) / 3600)::numeric, 2), 0
        )::float8 as hours_since_post,
        view_count,
        forward_count,
        reply_count,
        reaction_count,
        reactions,
        subscriber_count,
        round(view_count::numeric / nullif(subscriber_count, 0), 4)::float8
            as views_per_subscriber,
        loaded_at
    from with_subscribers

)

select * from final
