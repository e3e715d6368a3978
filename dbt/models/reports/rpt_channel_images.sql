{{
    config(
        indexes=[{'columns': ['channel_key', 'date_key']}],
    )
}}

-- Photos per channel, day and category (promotional, product_display, lifestyle, other).
-- A table like the image facts it reads (detections are rebuilt whole each build).
with images as (

    select * from {{ ref('fct_images') }}

),

final as (

    select
        channel_key,
        date_key,
        image_category,
        count(*)::integer as image_count
    from images
    group by channel_key, date_key, image_category

)

select * from final
