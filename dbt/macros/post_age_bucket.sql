{#
  The age buckets of a post's views growth (hours since posting): finer in the first
  day, when a post gets most of its views, then a bucket per day up to a week; the last
  bucket holds every reading a week or more after posting. A reading belongs to the
  bucket with the greatest start at or below its age.
#}
{% macro post_age_bucket_starts() -%}
    {{ return([0, 1, 3, 6, 12, 24, 48, 72, 96, 120, 144, 168]) }}
{%- endmacro %}


{# The start (hours) of the bucket holding `hours`. #}
{% macro post_age_bucket_start(hours) -%}
    {%- set starts = post_age_bucket_starts() -%}
    case
        {%- for start in starts[1:] | reverse %}
        when {{ hours }} >= {{ start }} then {{ start }}
        {%- endfor %}
        else 0
    end
{%- endmacro %}


{# The end (hours, exclusive) of the bucket starting at `start`; null for the last. #}
{% macro post_age_bucket_end(start) -%}
    {%- set starts = post_age_bucket_starts() -%}
    case {{ start }}
        {%- for low in starts[:-1] %}
        when {{ low }} then {{ starts[loop.index] }}
        {%- endfor %}
    end
{%- endmacro %}
