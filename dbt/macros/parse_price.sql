{# The first price written in `text`, in birr, as numeric (null when none). Sellers
   write it before the number (`Price 450 birr`, `Price: 1,200 Birr`, `ETB 90`,
   `ዋጋ 1,200 ብር`, `ዋጋ፦ 300 ብር`, `💰 350 birr`) or after it (`90 ETB`, `1,200 ብር ብቻ`).
   Thousands separators are dropped. Figures outside (0, 1,000,000) are not prices. #}
{% macro parse_price(text) -%}
    {%- set number = "([0-9][0-9,]*(?:[.][0-9]+)?)" -%}
    nullif(
        least(
            replace(
                coalesce(
                    substring(lower({{ text }}) from '(?:price:?|ዋጋ፦?|ዋጋ:|etb|💰)\s*{{ number }}'),
                    substring(lower({{ text }}) from '{{ number }}\s*(?:birr|ብር|etb)')
                ),
                ',', ''
            )::numeric,
            1000000
        ),
        1000000
    )
{%- endmacro %}
