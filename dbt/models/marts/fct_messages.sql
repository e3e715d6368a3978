{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['message_key'], 'unique': True},
            {'columns': ['channel_key', 'date_key']},
            {'columns': ['loaded_at']},
        ],
        post_hook=[
            "create index if not exists fct_messages_text_search on {{ this }}
             using gin (to_tsvector('simple', message_text))",
            "create index if not exists fct_messages_posted_at on {{ this }} (posted_at)",
        ],
    )
}}

-- One row per message. Incremental: only rows (re)loaded since the last build are
-- merged, so a re-scrape with grown view counts updates its row.
-- The post-hooks keep the API's indexes (idempotent, so they also reach a table built
-- before them): full-text search over the text with the 'simple' configuration (no
-- stemming or stop words: it splits English and Amharic alike) and recency.
with messages as (

    select * from {{ ref('stg_telegram_messages') }}
    {% if is_incremental() %}
    where loaded_at > (select coalesce(max(loaded_at), '-infinity') from {{ this }})
    {% endif %}

),

final as (

    select
        message_key,
        channel_username as channel_key,
        channel_title,
        posted_date as date_key,
        message_id,
        posted_at,
        edited_at,
        message_text,
        length(message_text) as text_length,
        view_count,
        forward_count,
        reply_count,
        media_type,
        media_path,
        has_image,
        is_forward,
        forwarded_from,
        grouped_id,
        scrape_source,
        scraped_at,
        loaded_at
    from messages

)

select * from final
