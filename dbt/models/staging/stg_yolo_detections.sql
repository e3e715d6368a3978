with source as (

    select * from {{ source('raw', 'yolo_detections') }}

),

final as (

    select
        channel_username || ':' || message_id || ':' || model_hash as image_key,
        channel_username || ':' || message_id as message_key,
        channel_username,
        message_id,
        model_hash,
        record ->> 'model_name' as model_name,
        record ->> 'media_path' as media_path,
        record ->> 'status' as detection_status,
        record ->> 'error' as detection_error,
        (record ->> 'image_width')::integer as image_width,
        (record ->> 'image_height')::integer as image_height,
        coalesce(record -> 'detections', '[]'::jsonb) as detections,
        jsonb_array_length(coalesce(record -> 'detections', '[]'::jsonb)) as object_count,
        record ->> 'content_hash' as content_hash,
        record ->> 'reused_from' as reused_from_media_path,
        record ->> 'reused_from' is not null as is_reused_detection,
        detected_at,
        loaded_at
    from source

)

select * from final
