-- How sellers wrote each product (English, brand or Amharic spellings as found in the
-- posts, lowercase): the API finds a product by any of them.
with mentions as (

    select product_key, lower(matched_alias) as alias, count(*) as mention_count
    from {{ ref('fct_product_mentions') }}
    where matched_alias is not null
    group by 1, 2

),

final as (

    -- an alias written for two products (rare: fuzzy matches) goes to the more frequent
    select distinct on (alias) product_key, alias, mention_count
    from mentions
    order by alias, mention_count desc, product_key

)

select * from final
