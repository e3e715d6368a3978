-- Every day from the first post (or observation of a channel or a post) to the last
-- (days without posts included, so trends show the gaps), with the calendar attributes
-- reports group by. The posts' range comes from rpt_channel_daily (a row per channel
-- and day), not a scan of every message.
with days_seen as (

    select min(date_key) as first_day, max(date_key) as last_day
    from {{ ref('rpt_channel_daily') }}
    union all
    -- channels and posts are observed after they were posted: their days are in too
    select min(date_key), max(date_key)
    from {{ ref('fct_channel_snapshots') }}
    union all
    select min(date_key), max(date_key)
    from {{ ref('fct_message_observations') }}

),

bounds as (

    select
        coalesce(min(first_day), current_date) as first_day,
        coalesce(max(last_day), current_date) as last_day
    from days_seen

),

days as (

    select generate_series(first_day, last_day, interval '1 day')::date as date_day
    from bounds

),

final as (

    select
        date_day as date_key,
        date_day,
        extract(isoyear from date_day)::integer as iso_year,
        extract(week from date_day)::integer as iso_week,
        date_trunc('week', date_day)::date as week_start_date,
        date_trunc('month', date_day)::date as month_start_date,
        extract(year from date_day)::integer as year_number,
        extract(quarter from date_day)::integer as quarter_number,
        extract(month from date_day)::integer as month_number,
        trim(to_char(date_day, 'Month')) as month_name,
        extract(isodow from date_day)::integer as day_of_week,
        trim(to_char(date_day, 'Day')) as day_name,
        extract(isodow from date_day) in (6, 7) as is_weekend
    from days

)

select * from final
