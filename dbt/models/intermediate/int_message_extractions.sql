{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['message_key'], 'unique': True}, {'columns': ['loaded_at']}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- Each message's current extraction: of the rows the extract stage wrote for it (one
-- per extractor version; within a version the newest scrape's), the newest. A changed
-- catalog or extractor writes a new version for every message, which wins here; the
-- messages themselves are not reloaded. Incremental on the extraction rows loaded since
-- the last build: those messages' rows are compared again, all versions at once.
with changed as (

    -- by the raw table's own key columns, so the join below uses its primary key
    select distinct channel_username, message_id
    from {{ ref('stg_message_extractions') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
    {% endif %}

),

final as (

    select distinct on (extractions.message_key)
        extractions.message_key,
        extractions.channel_username,
        extractions.message_id,
        extractions.extractor_version,
        extractions.extracted_at,
        extractions.mentions,
        extractions.prices,
        extractions.services,
        extractions.candidates,
        extractions.loaded_at
    from {{ ref('stg_message_extractions') }} as extractions
    inner join changed using (channel_username, message_id)
    order by extractions.message_key, extractions.extracted_at desc, extractions.extractor_version desc

)

select * from final
