-- Built from fct_messages (typed, indexed) rather than the JSONB staging view.
with messages as (

    select
        channel_key as channel_username,
        channel_title,
        posted_at,
        has_image,
        view_count,
        forward_count,
        reply_count
    from {{ ref('fct_messages') }}

),

latest_title as (

    select distinct on (channel_username)
        channel_username,
        channel_title
    from messages
    where channel_title is not null
    order by channel_username, posted_at desc

),

totals as (

    select
        channel_username,
        min(posted_at) as first_post_at,
        max(posted_at) as last_post_at,
        count(*) as post_count,
        count(*) filter (where has_image) as image_post_count,
        sum(view_count)::bigint as view_count,
        coalesce(sum(forward_count), 0)::bigint as forward_count,
        coalesce(sum(reply_count), 0)::bigint as reply_count
    from messages
    group by channel_username

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
