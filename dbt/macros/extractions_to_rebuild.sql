{#
  The body of a CTE: the current extractions (int_message_extractions) of the messages
  an incremental fact over them must rebuild, with each message's channel, day and post
  time from fct_messages. A message counts when its extraction or the message itself
  was (re)loaded since the model's safe point: the extract and load stages run side by
  side, so either may land first, and a fact joined to its message needs both.
#}
{% macro extractions_to_rebuild() -%}
    select
        extractions.*,
        messages.channel_key,
        messages.date_key,
        messages.posted_at,
        greatest(extractions.loaded_at, messages.loaded_at) as changed_at
    from {{ ref('int_message_extractions') }} as extractions
    inner join {{ ref('fct_messages') }} as messages using (message_key)
    {% if is_incremental() %}
    where extractions.message_key in (
        select message_key from {{ ref('int_message_extractions') }}
        where {{ incremental_window() }}
        union
        select message_key from {{ ref('fct_messages') }}
        where {{ incremental_window() }}
    )
    {% endif %}
{%- endmacro %}
