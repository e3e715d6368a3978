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

-- One row per price a message gives for a product, in birr. The API reads the report
-- marts built from it (rpt_price_points*), not this table.
with mentions as (

    select * from {{ ref('int_product_mentions') }}
    where price_birr is not null
    {% if is_incremental() %}
        and {{ incremental_window() }}
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
