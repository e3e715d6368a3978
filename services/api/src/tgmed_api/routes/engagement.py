"""Engagement per channel, from what Telegram scrapes record (exports carry none of it):
subscribers over time, views per subscriber and reactions of the posts of each period,
the most given reactions, and how a post's views grow in its first days. Each reads a
report mart (dbt `models/reports`: rpt_channel_subscribers_daily,
rpt_channel_engagement_daily, rpt_channel_reactions_daily, rpt_view_growth_daily) that
holds sums and counts per channel and day, so every mean is exact over any range and
computed in SQL."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from psycopg import sql

from tgmed_api.db import fetch_all
from tgmed_api.deps import CacheDep, FilterDep, PoolDep, ReportFilter, cached_json
from tgmed_api.models import (
    Engagement,
    EngagementPoint,
    GrowthPoint,
    ReactionChannel,
    ReactionItem,
    Reactions,
    SubscriberPoint,
    Subscribers,
    ViewGrowth,
)

router = APIRouter(prefix="/api/reports", tags=["engagement"])

BAD_FILTER = {422: {"description": "Invalid parameters (for example `from` after `to`)"}}
_BUCKETS = {"day": "date_key", "week": "week_start_date"}  # dim_dates columns
PeriodParam = Annotated[Literal["day", "week"], Query()]

# the period's last known count; the change against the channel's previous period
SUBSCRIBERS_SQL = """
with periods as (
    select
        s.channel_key,
        dates.{bucket} as period_start,
        (array_agg(s.subscriber_count order by s.date_key desc)
            filter (where s.subscriber_count is not null))[1] as subscriber_count,
        sum(s.snapshot_count)::integer as snapshot_count,
        max(s.last_observed_at) as last_observed_at
    from marts.rpt_channel_subscribers_daily as s
    inner join marts.dim_dates as dates using (date_key)
    where true {where}
    group by s.channel_key, dates.{bucket}
)
select
    channel_key as channel_username,
    period_start,
    subscriber_count,
    subscriber_count - lag(subscriber_count) over (
        partition by channel_key order by period_start
    ) as subscriber_change,
    snapshot_count,
    last_observed_at
from periods
order by channel_key, period_start
"""

ENGAGEMENT_SQL = """
select
    e.channel_key as channel_username,
    dates.{bucket} as period_start,
    sum(e.post_count)::bigint as post_count,
    sum(e.posts_with_views)::bigint as posts_with_views,
    sum(e.view_count)::float8 / nullif(sum(e.posts_with_views), 0) as views_per_post,
    sum(e.posts_with_subscribers)::bigint as posts_with_subscribers,
    sum(e.views_per_subscriber_sum) / nullif(sum(e.posts_with_subscribers), 0)
        as views_per_subscriber,
    sum(e.posts_with_reactions)::bigint as posts_with_reactions,
    sum(e.reaction_count)::bigint as reaction_count,
    sum(e.reaction_count)::float8 / nullif(sum(e.posts_with_reactions), 0)
        as reactions_per_post
from marts.rpt_channel_engagement_daily as e
inner join marts.dim_dates as dates using (date_key)
where true {where}
group by e.channel_key, dates.{bucket}
order by e.channel_key, dates.{bucket}
"""

REACTIONS_SQL = """
with per_channel as (
    select
        reaction,
        reaction_kind,
        channel_key,
        sum(reaction_count)::bigint as reaction_count,
        sum(post_count)::bigint as post_count
    from marts.rpt_channel_reactions_daily
    where true {where}
    group by reaction, reaction_kind, channel_key
)
select
    reaction,
    reaction_kind,
    sum(reaction_count)::bigint as reaction_count,
    sum(post_count)::bigint as post_count,
    jsonb_agg(
        jsonb_build_object(
            'channel_username', channel_key,
            'reaction_count', reaction_count,
            'post_count', post_count
        ) order by channel_key
    ) as channels
from per_channel
group by reaction, reaction_kind
order by reaction_count desc, reaction
limit %(limit)s
"""

GROWTH_SQL = """
select
    channel_key as channel_username,
    age_hours_from,
    min(age_hours_to) as age_hours_to,
    sum(reading_count)::bigint as reading_count,
    sum(post_count)::bigint as post_count,
    sum(hours_since_post_sum) / sum(reading_count) as mean_hours_since_post,
    sum(view_count_sum)::float8 / nullif(sum(readings_with_views), 0) as mean_views,
    sum(views_per_subscriber_sum) / nullif(sum(readings_with_subscribers), 0)
        as mean_views_per_subscriber
from marts.rpt_view_growth_daily
where true {where}
group by channel_key, age_hours_from
order by channel_key, age_hours_from
"""


def _query(
    template: str, where: ReportFilter, prefix: str = "", period: str = "day"
) -> sql.Composed:
    return sql.SQL(template).format(
        where=where.where(prefix=prefix), bucket=sql.Identifier(_BUCKETS[period])
    )


@router.get(
    "/subscribers",
    response_model=Subscribers,
    summary="Subscribers per channel over time (day or week of the scrape)",
    responses=BAD_FILTER,
)
async def subscribers(
    pool: PoolDep, cache: CacheDep, where: FilterDep, period: PeriodParam = "day"
) -> Response:
    async def build() -> Subscribers:
        rows = await fetch_all(
            pool, _query(SUBSCRIBERS_SQL, where, prefix="s.", period=period), where.params()
        )
        data = [SubscriberPoint(**r) for r in rows]
        return Subscribers(period=period, data=data, count=len(data))

    return await cached_json(cache, ("subscribers", period, where.key()), build)


@router.get(
    "/engagement",
    response_model=Engagement,
    summary="Per channel and period of posting: views per post and per subscriber, reactions",
    responses=BAD_FILTER,
)
async def engagement(
    pool: PoolDep, cache: CacheDep, where: FilterDep, period: PeriodParam = "week"
) -> Response:
    async def build() -> Engagement:
        rows = await fetch_all(
            pool, _query(ENGAGEMENT_SQL, where, prefix="e.", period=period), where.params()
        )
        data = [EngagementPoint(**r) for r in rows]
        return Engagement(period=period, data=data, count=len(data))

    return await cached_json(cache, ("engagement", period, where.key()), build)


@router.get(
    "/reactions",
    response_model=Reactions,
    summary="The most given reactions (emoji) on the posts, per channel",
    responses=BAD_FILTER,
)
async def reactions(
    pool: PoolDep,
    cache: CacheDep,
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    async def build() -> Reactions:
        rows = await fetch_all(
            pool, _query(REACTIONS_SQL, where), {**where.params(), "limit": limit}
        )
        data = [
            ReactionItem(**{**r, "channels": [ReactionChannel(**c) for c in r["channels"]]})
            for r in rows
        ]
        return Reactions(data=data, count=len(data))

    return await cached_json(cache, ("reactions", limit, where.key()), build)


@router.get(
    "/view-growth",
    response_model=ViewGrowth,
    summary="How posts' views grow in their first days: mean views by hours since posting",
    responses=BAD_FILTER,
)
async def view_growth(pool: PoolDep, cache: CacheDep, where: FilterDep) -> Response:
    async def build() -> ViewGrowth:
        rows = await fetch_all(pool, _query(GROWTH_SQL, where), where.params())
        data = [GrowthPoint(**r) for r in rows]
        return ViewGrowth(data=data, count=len(data))

    return await cached_json(cache, ("view-growth", where.key()), build)
