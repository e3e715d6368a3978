-- One row per channel with its totals, rolled up from rpt_channel_daily (a few rows per
-- channel) rather than from the million rows of fct_messages: the dimension is rebuilt
-- every build, so its cost must not grow with the messages. The title is the newest
-- post's (one index probe per channel on fct_messages' (channel_key, posted_at)).
with days as (

    select * from {{ ref('rpt_channel_daily') }}

),

totals as (

    select
        channel_key as channel_username,
        min(first_posted_at) as first_post_at,
        max(last_posted_at) as last_post_at,
        sum(post_count)::bigint as post_count,
        sum(image_post_count)::bigint as image_post_count,
        -- views of the posts whose count is known; null when none is known
        sum(view_count)::bigint as view_count,
        sum(forward_count)::bigint as forward_count,
        sum(reply_count)::bigint as reply_count
    from days
    group by channel_key

),

latest_title as (

    select
        totals.channel_username,
        newest.channel_title
    from totals
    cross join lateral (
        select channel_title
        from {{ ref('fct_messages') }}
        where channel_key = totals.channel_username
            and channel_title is not null
        order by posted_at desc
        limit 1
    ) as newest

),

final as (

    select
        totals.channel_username as channel_key,
        totals.channel_username,
        coalesce(latest_title.channel_title, totals.channel_username) as channel_title,
        totals.first_post_at,
        totals.last_post_at,
        totals.post_count,
        totals.image_post_count,
        totals.view_count,
        totals.forward_count,
        totals.reply_count
    from totals
    left join latest_title using (channel_username)

)

select * from final
