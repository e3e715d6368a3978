{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[
            {'columns': ['message_key']},
            {'columns': ['channel_key', 'date_key']},
            {'columns': ['product_key']},
            {'columns': ['loaded_at']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- One row per product a message names (the extract stage's findings: a drug by its
-- generic, a device, a cosmetic, a baby or supplement product), however often the
-- message names it. Incremental on the messages whose extraction or message row was
-- (re)loaded since the last build: their mentions are replaced as a whole.
with extractions as (

    {{ extractions_to_rebuild() }}

),

mentions as (

    select
        extractions.message_key,
        extractions.channel_key,
        extractions.date_key,
        extractions.posted_at,
        extractions.changed_at,
        mention.value ->> 'product' as product,
        mention.value ->> 'category' as category,
        mention.value ->> 'brand' as brand,
        mention.value ->> 'parent' as parent,
        mention.value ->> 'as_written' as as_written,
        mention.value ->> 'matched_by' as matched_by,
        mention.ordinality
    from extractions
    cross join lateral jsonb_array_elements(extractions.mentions) with ordinality as mention (value, ordinality)

),

priced as (

    select distinct
        extractions.message_key,
        price.value ->> 'product' as product
    from extractions
    cross join lateral jsonb_array_elements(extractions.prices) as price (value)
    where price.value ->> 'product' is not null

),

first_mention as (

    select distinct on (message_key, product) *
    from mentions
    order by message_key, product, ordinality

),

final as (

    select
        first_mention.message_key || ':' || {{ product_key('first_mention.product') }} as mention_key,
        first_mention.message_key,
        {{ product_key('first_mention.product') }} as product_key,
        first_mention.product as product_name,
        first_mention.category,
        first_mention.brand,
        {{ product_key('first_mention.parent') }} as parent_product_key,
        first_mention.channel_key,
        first_mention.date_key,
        first_mention.posted_at,
        first_mention.as_written as matched_alias,
        first_mention.matched_by,
        priced.product is not null as has_price,
        first_mention.changed_at as loaded_at
    from first_mention
    left join priced using (message_key, product)

)

select * from final
