with source as (

    select * from {{ source('raw', 'telegram_channel_snapshots') }}

),

final as (

    select
        channel_username || '@'
            || to_char(observed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            as snapshot_key,
        channel_username,
        (record ->> 'channel_id')::bigint as channel_id,
        record ->> 'title' as channel_title,
        record ->> 'description' as channel_description,
        (record ->> 'subscribers')::integer as subscriber_count,
        observed_at,
        -- the sellers' day: Addis Ababa time (UTC+3, no daylight saving)
        (observed_at at time zone 'Africa/Addis_Ababa')::date as observed_date,
        loaded_at
    from source

)

select * from final
