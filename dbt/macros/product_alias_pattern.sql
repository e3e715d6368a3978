{# A regular expression that finds `alias` as a whole word: not glued to other Latin
   letters or digits ("ors" is not in "doctors"), while Amharic words may carry
   suffixes (ፓራሲታሞልን still names ፓራሲታሞል). #}
{% macro product_alias_pattern(alias) -%}
    '(^|[^a-z0-9])' || regexp_replace(lower({{ alias }}), '([.^$*+?()\[\]{}|\\-])', '\\\1', 'g') || '($|[^a-z0-9])'
{%- endmacro %}
