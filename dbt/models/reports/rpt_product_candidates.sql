-- Names that look like products (right before a price or a dose) but are in no catalog:
-- what an analyst reviews to add a new product the week it appears. One row per name
-- (lowercase), with the posts and channels naming it, when, and up to three example
-- posts. Built from every message's current extraction, so a name added to the catalog
-- leaves this list at the next extraction.
with extractions as (

    select * from {{ ref('int_message_extractions') }}

),

messages as (

    select message_key, channel_key, posted_at, message_text from {{ ref('fct_messages') }}

),

named as (

    select distinct
        lower(candidate.value ->> 'name') as candidate_name,
        candidate.value ->> 'name' as as_written,
        extractions.message_key
    from extractions
    cross join lateral jsonb_array_elements(extractions.candidates) as candidate (value)

),

per_post as (

    select
        named.candidate_name,
        min(named.as_written) as as_written,
        named.message_key,
        messages.channel_key,
        messages.posted_at,
        messages.message_text
    from named
    inner join messages using (message_key)
    group by named.candidate_name, named.message_key, messages.channel_key, messages.posted_at, messages.message_text

),

final as (

    select
        candidate_name,
        mode() within group (order by as_written) as as_written,
        count(*)::integer as post_count,
        count(distinct channel_key)::integer as channel_count,
        array_agg(distinct channel_key order by channel_key) as channels,
        min(posted_at) as first_posted_at,
        max(posted_at) as last_posted_at,
        -- the three newest posts naming it
        jsonb_path_query_array(
            jsonb_agg(
                jsonb_build_object(
                    'message_key', message_key,
                    'channel_key', channel_key,
                    'posted_at', posted_at,
                    'text', left(message_text, 280)
                )
                order by posted_at desc, message_key
            ),
            '$[0 to 2]'
        ) as examples
    from per_post
    group by candidate_name

)

select * from final
