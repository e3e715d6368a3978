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

-- Each message split into its lines: sellers put one product and its price per line.
-- The price on each line is parsed here, once.
-- Incremental: only messages (re)loaded since the last build are split again.
with messages as (

    select * from {{ ref('stg_telegram_messages') }}
    {% if is_incremental() %}
    where {{ incremental_window() }}
    {% endif %}

),

final as (

    select
        messages.message_key,
        lines.line_number::integer as line_number,
        lower(lines.line_text) as line_text,
        {{ parse_price('lines.line_text') }} as line_price,
        messages.loaded_at
    from messages
    cross join lateral regexp_split_to_table(messages.message_text, '\n')
        with ordinality as lines (line_text, line_number)
    where btrim(lines.line_text) <> ''

)

select * from final
