{# post_hook's update: rows merged before has_image was false without media held null (issue 24) #}
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
            {'columns': ['posted_at']},
            {'columns': ['channel_key', 'posted_at']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=[
            "{{ ensure_index(['search_vector'], 'gin') }}",
            "{% if is_incremental() %}update {{ this }} set has_image = false where has_image is null{% endif %}",
            "{{ record_safe_point() }}",
            "{{ analyze_if_new() }}",
        ],
    )
}}

-- One row per message. Incremental: only rows (re)loaded since the last build are
-- merged, so a re-scrape with grown view counts updates its row.
-- search_vector is the text's words for the API's full-text search: the 'simple'
-- configuration (lower case, no stemming or stop words) splits English and Amharic
-- alike. Stored, because ranking re-parsing every matched text is what made a common
-- word's search slow (docs/benchmarks.md); the post-hook's GIN index (ensure_index: it
-- also reaches a table built before it, and survives a full refresh) serves the match. A table built before the
-- column existed gets it empty for old rows: rebuild once with --full-refresh.
with messages as (

    select * from {{ ref('stg_telegram_messages') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
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
        to_tsvector('simple', message_text) as search_vector,
        view_count,
        forward_count,
        reply_count,
        reaction_count,
        reactions,
        media_type,
        media_path,
        has_image,
        is_forward,
        forwarded_from,
        forwarded_from_id,
        forwarded_message_id,
        grouped_id,
        scrape_source,
        scraped_at,
        loaded_at
    from messages

)

select * from final
