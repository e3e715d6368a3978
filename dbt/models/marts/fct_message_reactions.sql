{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[
            {'columns': ['channel_key', 'reaction']},
            {'columns': ['message_key']},
            {'columns': ['loaded_at']},
        ],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- One row per reaction on a post (its newest scrape): how many users reacted with each
-- emoji, custom emoji or paid stars. Incremental on the messages (re)loaded since the
-- last build: a re-read post's reactions are replaced as a whole. Posts whose reactions
-- are unknown (exports without them) or none have no rows.
with messages as (

    select message_key, channel_key, date_key, posted_at, reactions, loaded_at
    from {{ ref('fct_messages') }}
    where jsonb_typeof(reactions) = 'array'
    {% if is_incremental() %}
        and {{ incremental_window() }}
    {% endif %}

),

reactions as (

    select
        messages.message_key,
        messages.channel_key,
        messages.date_key,
        messages.posted_at,
        item ->> 'kind' as reaction_kind,
        item ->> 'reaction' as reaction,
        (item ->> 'count')::integer as reaction_count,
        messages.loaded_at
    from messages
    cross join lateral jsonb_array_elements(messages.reactions) as item

),

final as (

    select
        message_key || ':' || reaction as reaction_key,
        message_key,
        channel_key,
        date_key,
        posted_at,
        reaction_kind,
        reaction,
        reaction_count,
        loaded_at
    from reactions

)

select * from final
