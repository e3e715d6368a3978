{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['message_key']}, {'columns': ['loaded_at']}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- One row per fee a message asks for a service (repair, calibration, delivery,
-- consultation, rental): kept apart so it never passes for a product's price.
with extractions as (

    {{ extractions_to_rebuild() }}

),

final as (

    select
        extractions.message_key || ':' || fee.ordinality as fee_key,
        extractions.message_key,
        fee.value ->> 'service' as service,
        {{ product_key("fee.value ->> 'product'") }} as product_key,
        extractions.channel_key,
        extractions.date_key,
        extractions.posted_at,
        fee.value ->> 'currency' as currency,
        (fee.value ->> 'amount')::numeric(14, 2) as amount,
        (fee.value ->> 'high')::numeric(14, 2) as amount_high,
        fee.value ->> 'as_written' as as_written,
        extractions.changed_at as loaded_at
    from extractions
    cross join lateral jsonb_array_elements(extractions.services) with ordinality as fee (value, ordinality)

)

select * from final
