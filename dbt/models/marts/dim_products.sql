-- Every product the extract stage found in a post: its canonical name (a medicine's
-- generic, combinations joined by ` + `), category, brand and the product it belongs
-- to. The knowledge base (services/extract/src/tgmed_extract/catalog/ and the drug
-- dictionary) decides what a product is; this is the part of it the channels name.
with mentions as (

    select * from {{ ref('fct_product_mentions') }}

),

named as (

    -- one row per product: its most frequent category and brand (a brand's product is
    -- always that brand's; a generic mentioned through a brand keeps brand null)
    select distinct on (product_key)
        product_key,
        product_name,
        category,
        parent_product_key
    from mentions
    group by product_key, product_name, category, parent_product_key
    order by product_key, count(*) desc, category

),

final as (

    select
        named.product_key,
        -- display name: capitalised first letter (`amoxicillin + clavulanic acid`)
        upper(left(named.product_name, 1)) || substr(named.product_name, 2) as product_name,
        named.category,
        brands.brand,
        named.parent_product_key
    from named
    left join lateral (
        select mentions.brand
        from mentions
        where mentions.product_key = named.product_key and mentions.brand is not null
        group by mentions.brand
        order by count(*) desc, mentions.brand
        limit 1
    ) as brands on true

)

select * from final
