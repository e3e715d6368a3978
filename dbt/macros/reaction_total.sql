{#- The total count of a record's reactions (a JSONB array of {kind, reaction, count}):
    null when the reactions are unknown (an export without them), 0 when there are none. -#}
{% macro reaction_total(reactions) -%}
    case
        when jsonb_typeof({{ reactions }}) = 'array' then (
            select coalesce(sum((item ->> 'count')::integer), 0)::integer
            from jsonb_array_elements({{ reactions }}) as item
        )
    end
{%- endmacro %}
