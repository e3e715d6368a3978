{{
    config(
        materialized='incremental',
        unique_key=['channel_key', 'date_key'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel_key', 'date_key', 'reaction'], 'unique': True}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=[
            "delete from {{ this }} where reaction is null",
            "{{ record_safe_point() }}",
            "{{ analyze_if_new() }}",
        ],
    )
}}

-- Reactions per channel, day of posting (Addis Ababa) and reaction (an emoji, a custom
-- emoji, paid stars): how many users reacted so to that day's posts at their newest
-- scrape, and on how many posts. The top reactions per channel and date range sum these
-- rows. Incremental per (channel, day): the slices holding a post (re)loaded since the
-- last build are recomputed whole. A slice can lose every reaction (the only post that
-- had one lost it), and delete+insert replaces only the slices its new rows name, so
-- each recomputed slice also gets a marker row (reaction null) that replaces its old
-- rows and is deleted again by the post-hook in the same transaction.
with changed_days as (

    {{ changed_days([(ref('fct_messages'), 'date_key'), (ref('fct_message_reactions'), 'date_key')]) }}

),

reactions as (

    {% if is_incremental() %}
    -- through the posts of the changed days, both probed by index
    select reactions.*
    from ({{ rows_in_slices(ref('fct_messages')) }}) as messages
    cross join lateral (
        select *
        from {{ ref('fct_message_reactions') }} as message_reactions
        where message_reactions.message_key = messages.message_key
        offset 0
    ) as reactions
    {% else %}
    select * from {{ ref('fct_message_reactions') }}
    {% endif %}

),

per_reaction as (

    select
        channel_key,
        date_key,
        reaction_kind,
        reaction,
        sum(reaction_count)::bigint as reaction_count,
        count(*)::integer as post_count
    from reactions
    group by channel_key, date_key, reaction_kind, reaction

),

final as (

    select * from per_reaction
    {% if is_incremental() %}
    union all
    select
        channel_key,
        date_key,
        null as reaction_kind,
        null as reaction,
        0 as reaction_count,
        0 as post_count
    from changed_days
    {% endif %}

)

select * from final
