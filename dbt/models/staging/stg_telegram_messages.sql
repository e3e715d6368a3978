with source as (

    select * from {{ source('raw', 'telegram_messages') }}

),

final as (

    select
        channel_username || ':' || message_id as message_key,
        channel_username,
        message_id,
        record ->> 'channel_title' as channel_title,
        message_date as posted_at,
        -- the sellers' day: Addis Ababa time (UTC+3, no daylight saving)
        (message_date at time zone 'Africa/Addis_Ababa')::date as posted_date,
        (record ->> 'edit_date')::timestamptz as edited_at,
        coalesce(record ->> 'text', '') as message_text,
        (record ->> 'views')::integer as view_count,
        (record ->> 'forwards')::integer as forward_count,
        (record ->> 'replies')::integer as reply_count,
        record ->> 'media_type' as media_type,
        record ->> 'media_path' as media_path,
        coalesce(record ->> 'media_type' = 'photo', false) as has_image,  -- no media: false
        (record ->> 'grouped_id')::bigint as grouped_id,
        record ->> 'forwarded_from' as forwarded_from,
        (record ->> 'forwarded_from_id')::bigint as forwarded_from_id,
        (record ->> 'forwarded_message_id')::bigint as forwarded_message_id,
        record ->> 'forwarded_from' is not null
            or record ->> 'forwarded_from_id' is not null as is_forward,
        record -> 'reactions' as reactions,
        {{ reaction_total("record -> 'reactions'") }} as reaction_count,
        record ->> 'source' as scrape_source,
        scraped_at,
        loaded_at
    from source

)

select * from final
