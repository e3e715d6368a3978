-- One row per object detected in a photo, with the photo's category.
with images as (

    select * from {{ ref('fct_images') }}

),

detections as (

    select * from {{ ref('stg_yolo_detections') }}

),

objects as (

    select
        detections.image_key,
        objects.ordinality::integer as object_number,
        (objects.object ->> 'class_id')::integer as class_id,
        objects.object ->> 'class_name' as class_name,
        (objects.object ->> 'confidence')::numeric as confidence,
        (objects.object -> 'box' ->> 0)::numeric as box_x1,
        (objects.object -> 'box' ->> 1)::numeric as box_y1,
        (objects.object -> 'box' ->> 2)::numeric as box_x2,
        (objects.object -> 'box' ->> 3)::numeric as box_y2
    from detections
    cross join lateral jsonb_array_elements(detections.detections)
        with ordinality as objects (object, ordinality)

),

final as (

    select
        objects.image_key || ':' || objects.object_number as detection_key,
        objects.image_key,
        images.message_key,
        images.channel_key,
        images.date_key,
        images.model_name,
        objects.class_id,
        objects.class_name,
        objects.confidence,
        objects.box_x1,
        objects.box_y1,
        objects.box_x2,
        objects.box_y2,
        images.image_category
    from objects
    inner join images using (image_key)

)

select * from final
