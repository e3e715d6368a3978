with source as (

    select * from {{ source('raw', 'telegram_message_observations') }}

),

final as (

    select
        channel_username || ':' || message_id || '@'
            || to_char(observed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            as observation_key,
        channel_username || ':' || message_id as message_key,
        channel_username,
        message_id,
        message_date as posted_at,
        observed_at,
        -- the sellers' day: Addis Ababa time (UTC+3, no daylight saving)
        (observed_at at time zone 'Africa/Addis_Ababa')::date as observed_date,
        (record ->> 'views')::integer as view_count,
        (record ->> 'forwards')::integer as forward_count,
        (record ->> 'replies')::integer as reply_count,
        record -> 'reactions' as reactions,
        {{ reaction_total("record -> 'reactions'") }} as reaction_count,
        loaded_at
    from source

)

select * from final
