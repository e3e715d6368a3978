-- One row per photo per detection model, with what kind of picture it is:
-- promotional (a person with a product), product_display (a product, no person),
-- lifestyle (a person, no product), other (neither, or nothing detected).
with images as (

    select * from {{ ref('stg_yolo_detections') }}

),

objects as (

    select
        images.image_key,
        object ->> 'class_name' as class_name
    from images
    cross join lateral jsonb_array_elements(images.detections) as object

),

product_classes as (

    select class_name from {{ ref('coco_product_classes') }}

),

flags as (

    select
        image_key,
        bool_or(class_name = 'person') as has_person,
        bool_or(class_name in (select class_name from product_classes)) as has_product
    from objects
    group by image_key

),

messages as (

    select message_key, channel_key, date_key from {{ ref('fct_messages') }}

),

final as (

    select
        images.image_key,
        images.message_key,
        messages.channel_key,
        messages.date_key,
        images.model_name,
        images.model_hash,
        images.media_path,
        images.detection_status,
        images.image_width,
        images.image_height,
        images.object_count,
        coalesce(flags.has_person, false) as has_person,
        coalesce(flags.has_product, false) as has_product,
        case
            when flags.has_person and flags.has_product then 'promotional'
            when flags.has_product then 'product_display'
            when flags.has_person then 'lifestyle'
            else 'other'
        end as image_category,
        images.detected_at
    from images
    inner join messages using (message_key)
    left join flags using (image_key)

)

select * from final
