{{
    config(
        materialized='incremental',
        unique_key=['channel_key', 'date_key'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel_key', 'date_key', 'age_hours_from'], 'unique': True}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- How a post's views grow in its first days: every reading of a post's counts
-- (fct_message_observations) by the age of the post when it was read, in buckets
-- (macros/post_age_bucket.sql: 0-1 h, 1-3, 3-6, 6-12, 12-24, then a day each up to a
-- week, then a week or more), per channel and day of posting (Addis Ababa). Sums and
-- counts only: the mean views of a post at an age, over any channel set and date range,
-- is sum over sum. Incremental per (channel, posting day): readings are only ever added,
-- so the slices with readings loaded since the last build are recomputed whole.
with changed_days as (

    {{ changed_days([(ref('fct_message_observations'), 'posted_date_key')]) }}

),

observations as (

    {{ rows_in_slices(ref('fct_message_observations'), keys=('channel_key', 'posted_date_key')) }}

),

readings as (

    select
        channel_key,
        posted_date_key as date_key,
        message_key,
        hours_since_post,
        view_count,
        views_per_subscriber,
        {{ post_age_bucket_start('hours_since_post') }} as age_hours_from
    from observations

),

final as (

    select
        channel_key,
        date_key,
        age_hours_from,
        {{ post_age_bucket_end('age_hours_from') }} as age_hours_to,
        count(*)::integer as reading_count,
        count(distinct message_key)::integer as post_count,
        sum(hours_since_post)::float8 as hours_since_post_sum,
        count(view_count)::integer as readings_with_views,
        sum(view_count)::bigint as view_count_sum,
        count(views_per_subscriber)::integer as readings_with_subscribers,
        sum(views_per_subscriber)::float8 as views_per_subscriber_sum
    from readings
    group by channel_key, date_key, age_hours_from

)

select * from final
