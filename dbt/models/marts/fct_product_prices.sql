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

-- One row per price a message gives for a product: each size or pack its own row (with
-- its strength, size, pack and the price per unit where the pack count is known), a
-- range as its low price with `price_high`, "was X now Y" as Y with `old_price`. Prices
-- in another currency keep it (`currency`, `amount`; `price_birr` null); prices the
-- extractor could give to no product are not here. The API reads the report marts built
-- from it (rpt_price_points*), in birr.
with extractions as (

    {{ extractions_to_rebuild() }}

),

prices as (

    select
        extractions.*,
        price.value,
        price.ordinality
    from extractions
    cross join lateral jsonb_array_elements(extractions.prices) with ordinality as price (value, ordinality)
    where price.value ->> 'product' is not null

),

final as (

    select
        message_key || ':' || ordinality as price_key,
        message_key,
        {{ product_key("value ->> 'product'") }} as product_key,
        channel_key,
        date_key,
        posted_at,
        value ->> 'currency' as currency,
        (value ->> 'amount')::numeric(14, 2) as amount,
        case when value ->> 'currency' = 'ETB' then (value ->> 'amount')::numeric(14, 2) end as price_birr,
        (value ->> 'high')::numeric(14, 2) as price_high,
        (value ->> 'old_price')::numeric(14, 2) as old_price,
        value ->> 'strength' as strength,
        value ->> 'size' as size,
        value ->> 'pack' as pack,
        (value ->> 'pack_count')::integer as pack_count,
        (value ->> 'unit_price')::numeric(14, 4) as unit_price,
        value ->> 'as_written' as as_written,
        changed_at as loaded_at
    from prices

)

select * from final
