{{
    config(
        indexes=[{'columns': ['channel_key', 'date_key']}, {'columns': ['class_name']}],
    )
}}

-- Objects detected per channel, day and class, and in how many photos: top detected
-- objects per channel and date range.
with detections as (

    select * from {{ ref('fct_image_detections') }}

),

final as (

    select
        channel_key,
        date_key,
        class_name,
        count(*)::integer as object_count,
        count(distinct image_key)::integer as image_count
    from detections
    group by channel_key, date_key, class_name

)

select * from final
