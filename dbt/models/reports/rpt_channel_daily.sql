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

-- Posting activity per channel and day (Addis Ababa days): what the activity endpoint and
-- the dashboard's trends read. Incremental: the (channel, day) slices holding a message
-- (re)loaded since the last build are recomputed whole from fct_messages and replace
-- their old rows, so a re-scrape with grown views updates its day and a re-read changes
-- nothing. Views are null where no post of the day has a known view count.
with changed_days as (

    {{ changed_days([(ref('fct_messages'), 'date_key')]) }}

),

messages as (

    {{ rows_in_slices(ref('fct_messages')) }}

),

final as (

    select
        channel_key,
        date_key,
        count(*)::integer as post_count,
        count(*) filter (where has_image)::integer as image_post_count,
        count(view_count)::integer as posts_with_views,
        sum(view_count)::bigint as view_count,
        sum(forward_count)::bigint as forward_count,
        sum(reply_count)::bigint as reply_count,
        min(posted_at) as first_posted_at,
        max(posted_at) as last_posted_at
    from messages
    group by channel_key, date_key

)

select * from final
