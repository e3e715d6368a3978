{# A product's key from its canonical name (the extract stage's, lowercase): letters,
   digits (Latin and Ge'ez) and underscores, e.g. `amoxicillin + clavulanic acid` ->
   `amoxicillin_clavulanic_acid`. Stable as long as the name is. #}
{% macro product_key(name) -%}
    btrim(regexp_replace(lower({{ name }}), '[^a-z0-9\u1200-\u137f]+', '_', 'g'), '_')
{%- endmacro %}
