{{
    config(
        materialized='incremental',
        unique_key='message_key',
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['message_key']}, {'columns': ['loaded_at']}],
        pre_hook=["{{ note_safe_point() }}"],
        post_hook=["{{ record_safe_point() }}", "{{ analyze_if_new() }}"],
    )
}}

-- Which product each message names, and the price it gives for it.
-- A product's price is the first price on the line naming it; when that line has none
-- and the message names a single product, the first price anywhere in the message
-- (the common "Product\nPrice 450 birr" layout).
with lines as (

    select * from {{ ref('int_message_lines') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
    {% endif %}

),

aliases as materialized (

    select
        product_key,
        alias,
        {{ product_alias_pattern('alias') }} as alias_pattern,
        left(split_part(alias, ' ', 1), 3) as alias_prefix
    from {{ ref('product_aliases') }}

),

line_words as (

    -- the first three letters of every word: a hash join on them finds the few
    -- (line, alias) pairs worth a closer look, instead of trying every alias on
    -- every line (PostgreSQL caches only 32 compiled patterns; there are more aliases)
    select distinct
        lines.message_key,
        lines.line_number,
        left(btrim(words.word, '.,:;!?()[]/\-*#"''«»✅💰📍📞፦።፣'), 3) as word_prefix
    from lines
    cross join lateral string_to_table(lines.line_text, ' ') as words (word)

),

candidate_lines as (

    -- ordered by alias, and kept whole (offset 0) so the regular expression below runs
    -- over them in that order: PostgreSQL keeps only 32 compiled patterns, and with more
    -- aliases than that in an unordered stream every test compiled its pattern again
    -- (800 s for 200k varied messages; see docs/benchmarks.md). In alias order each
    -- pattern is compiled once.
    select distinct
        lines.message_key,
        lines.loaded_at,
        aliases.product_key,
        lines.line_number,
        lines.line_text,
        aliases.alias,
        aliases.alias_pattern,
        lines.line_price
    from line_words
    inner join aliases
        on line_words.word_prefix = aliases.alias_prefix
    inner join lines
        on line_words.message_key = lines.message_key
        and line_words.line_number = lines.line_number
    where strpos(lines.line_text, aliases.alias) > 0
    order by aliases.alias
    offset 0

),

matched_lines as (

    select
        message_key,
        loaded_at,
        product_key,
        line_number,
        alias,
        line_price
    from candidate_lines
    where line_text ~ alias_pattern

),

first_match as (

    select distinct on (message_key, product_key)
        message_key,
        loaded_at,
        product_key,
        line_number,
        alias as matched_alias,
        line_price
    from matched_lines
    order by message_key, product_key, (line_price is null), line_number, length(alias) desc

),

message_prices as (

    select distinct on (message_key)
        message_key,
        line_price as message_price
    from lines
    where line_price is not null
    order by message_key, line_number

),

products_per_message as (

    select message_key, count(*) as product_count
    from first_match
    group by message_key

),

final as (

    select
        first_match.message_key || ':' || first_match.product_key as mention_key,
        first_match.message_key,
        first_match.product_key,
        first_match.matched_alias,
        first_match.line_number,
        coalesce(
            first_match.line_price,
            case when products_per_message.product_count = 1 then message_prices.message_price end
        ) as price_birr,
        first_match.loaded_at
    from first_match
    inner join products_per_message using (message_key)
    left join message_prices using (message_key)

)

select * from final
