with products as (

    select * from {{ ref('products') }}

),

final as (

    select
        product_key,
        product_name,
        category
    from products

)

select * from final
