with source as (

    select * from {{ source('raw', 'message_extractions') }}

),

final as (

    select
        channel_username || ':' || message_id as message_key,
        channel_username,
        message_id,
        extractor_version,
        record ->> 'extractor' as extractor,
        record ->> 'knowledge' as knowledge_version,
        scraped_at,
        extracted_at,
        coalesce(record -> 'mentions', '[]'::jsonb) as mentions,
        coalesce(record -> 'prices', '[]'::jsonb) as prices,
        coalesce(record -> 'services', '[]'::jsonb) as services,
        coalesce(record -> 'candidates', '[]'::jsonb) as candidates,
        loaded_at
    from source

)

select * from final
