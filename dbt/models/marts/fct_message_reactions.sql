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
        post_hook=[
            "delete from {{ this }} where reaction is null",
            "{{ record_safe_point() }}",
            "{{ analyze_if_new() }}",
        ],
    )
}}

-- One row per reaction on a post (its newest scrape): how many users reacted with each
-- emoji, custom emoji or paid stars. Incremental on the messages (re)loaded since the
-- last build: a re-read post's reactions are replaced as a whole. Posts whose reactions
-- are unknown (exports without them) or none have no rows.
-- delete+insert replaces only the messages its new rows name, and a post that lost every
-- reaction has no new row: each (re)loaded message also gets a marker row (reaction
-- null) that replaces its old rows, deleted again by the post-hook in the same
-- transaction.
with messages as (

    select message_key, channel_key, date_key, posted_at, reactions, loaded_at
    from {{ ref('fct_messages') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
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
    -- unknown reactions (not an array: an export without them) have no rows
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(messages.reactions) = 'array' then messages.reactions end
    ) as item

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
    {% if is_incremental() %}
    union all
    select
        null as reaction_key,
        message_key,
        channel_key,
        date_key,
        posted_at,
        null as reaction_kind,
        null as reaction,
        null as reaction_count,
        loaded_at
    from messages
    {% endif %}

)

select * from final
