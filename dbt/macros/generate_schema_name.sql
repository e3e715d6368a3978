{# Models land in the schema named in dbt_project.yml (staging, marts) as is, not
   prefixed with the target schema: the API role is granted exactly `marts`. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
