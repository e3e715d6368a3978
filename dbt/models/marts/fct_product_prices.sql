{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['product_key', 'channel_key']}, {'columns': ['loaded_at']}],
        post_hook=[
            "create index if not exists fct_product_prices_latest on {{ this }}
             (product_key, channel_key, posted_at desc, price_key desc) include (price_birr)",
        ],
    )
}}

-- One row per price a message gives for a product, in birr. The post-hook's index
-- (idempotent) gives the API each channel's latest price of a product in one probe.
with mentions as (

    select * from {{ ref('int_product_mentions') }}
    where price_birr is not null
    {% if is_incremental() %}
        and loaded_at > (select coalesce(max(loaded_at), '-infinity') from {{ this }})
    {% endif %}

),

messages as (

    select message_key, channel_key, date_key, posted_at from {{ ref('fct_messages') }}

),

final as (

    select
        mentions.mention_key as price_key,
        mentions.message_key,
        mentions.product_key,
        messages.channel_key,
        messages.date_key,
        messages.posted_at,
        mentions.price_birr,
        mentions.loaded_at
    from mentions
    inner join messages using (message_key)

)

select * from final
