{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[
            {'columns': ['message_key']},
            {'columns': ['channel_key', 'date_key']},
            {'columns': ['loaded_at']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- One row per product a message names. Incremental on the messages (re)loaded since
-- the last build: their mentions are replaced as a whole.
with mentions as (

    select * from {{ ref('int_product_mentions') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
    {% endif %}

),

messages as (

    select message_key, channel_key, date_key, posted_at from {{ ref('fct_messages') }}

),

final as (

    select
        mentions.mention_key,
        mentions.message_key,
        mentions.product_key,
        messages.channel_key,
        messages.date_key,
        messages.posted_at,
        mentions.matched_alias,
        mentions.price_birr is not null as has_price,
        mentions.loaded_at
    from mentions
    inner join messages using (message_key)

)

select * from final
