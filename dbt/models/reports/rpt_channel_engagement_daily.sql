{{
    config(
        materialized='incremental',
        unique_key=['channel_key', 'date_key'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel_key', 'date_key'], 'unique': True}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- Engagement of a channel's posts per day of posting (Addis Ababa days): their views and
-- reactions at their newest scrape, and views per subscriber (each post's views at its
-- newest reading over the channel's subscribers then, from fct_message_observations;
-- posts from exports have no reading). Sums and counts only, so a week or a date range
-- is their sum and every mean the API gives is exact. Incremental per (channel, day) like
-- rpt_channel_daily: the slices holding a post (re)loaded or (re)read since the last
-- build are recomputed whole.
with changed_days as (

    {{ changed_days([(ref('fct_messages'), 'date_key'), (ref('fct_message_observations'), 'posted_date_key')]) }}

),

messages as (

    {{ rows_in_slices(ref('fct_messages')) }}

),

readings as (

    {{ rows_in_slices(ref('fct_message_observations'), keys=('channel_key', 'posted_date_key')) }}

),

newest_readings as (

    select distinct on (message_key)
        message_key,
        views_per_subscriber
    from readings
    order by message_key, observed_at desc

),

final as (

    select
        messages.channel_key,
        messages.date_key,
        count(*)::integer as post_count,
        count(messages.view_count)::integer as posts_with_views,
        sum(messages.view_count)::bigint as view_count,
        count(messages.reaction_count)::integer as posts_with_reactions,
        sum(messages.reaction_count)::bigint as reaction_count,
        count(newest_readings.views_per_subscriber)::integer as posts_with_subscribers,
        sum(newest_readings.views_per_subscriber)::float8 as views_per_subscriber_sum
    from messages
    left join newest_readings using (message_key)
    group by messages.channel_key, messages.date_key

)

select * from final
