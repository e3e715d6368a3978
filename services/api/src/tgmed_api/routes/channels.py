"""Channels: their totals, and their posting activity per day or week."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from psycopg import sql

from tgmed_api.db import fetch_all, fetch_one
from tgmed_api.deps import CacheDep, PoolDep, cached_json, check_range
from tgmed_api.models import NO_NUL, ActivityPoint, Channel, ChannelActivity, ChannelList, ErrorBody

router = APIRouter(prefix="/api/channels", tags=["channels"])

CHANNELS_SQL = """
select
    channel_username,
    channel_title,
    first_post_at,
    last_post_at,
    post_count,
    image_post_count,
    view_count,
    forward_count,
    reply_count
from marts.dim_channels
order by post_count desc, channel_username
"""

CHANNEL_SQL = """
select
    channel_username,
    (first_post_at at time zone 'Africa/Addis_Ababa')::date as first_day,
    (last_post_at at time zone 'Africa/Addis_Ababa')::date as last_day
from marts.dim_channels
where channel_key = %(channel)s
"""

# Every day (or week) of the range, days without posts included: the calendar drives.
# The channel's days come pre-aggregated (rpt_channel_daily: one row per day).
ACTIVITY_SQL = """
with days as (
    select date_key, {bucket} as period_start
    from marts.dim_dates
    where date_key between %(date_from)s and %(date_to)s
),
posts as (
    select *
    from marts.rpt_channel_daily
    where channel_key = %(channel)s and date_key between %(date_from)s and %(date_to)s
)
select
    days.period_start,
    coalesce(sum(posts.post_count), 0)::bigint as post_count,
    sum(posts.view_count)::bigint as view_count,
    coalesce(sum(posts.posts_with_views), 0)::bigint as posts_with_views,
    sum(posts.forward_count)::bigint as forward_count,
    sum(posts.reply_count)::bigint as reply_count,
    coalesce(sum(posts.image_post_count), 0)::bigint as image_post_count
from days
left join posts using (date_key)
group by days.period_start
order by days.period_start
"""
_BUCKETS = {"day": "date_key", "week": "week_start_date"}  # dim_dates columns

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such channel"}}
BAD_RANGE = {422: {"description": "Invalid parameters (for example `from` after `to`)"}}


@router.get("", response_model=ChannelList, summary="Channels with their totals")
async def list_channels(pool: PoolDep, cache: CacheDep) -> Response:
    async def build() -> ChannelList:
        rows = await fetch_all(pool, CHANNELS_SQL)
        return ChannelList(data=[Channel(**row) for row in rows], count=len(rows))

    return await cached_json(cache, ("channels",), build)


@router.get(
    "/{channel_username}/activity",
    response_model=ChannelActivity,
    summary="Posts, views, forwards, replies and media share per day or week",
    responses={**NOT_FOUND, **BAD_RANGE},
)
async def channel_activity(
    request: Request,
    pool: PoolDep,
    cache: CacheDep,
    channel_username: Annotated[
        str,
        Path(
            min_length=1,
            max_length=64,
            pattern=NO_NUL,
            description="Telegram username (any case)",
        ),
    ],
    period: Annotated[Literal["day", "week"], Query()] = "day",
    date_from: Annotated[
        date | None,
        Query(alias="from", description="First day (default: the channel's first post)"),
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Last day (default: its last post)")
    ] = None,
) -> Response:
    check_range(request, date_from, date_to)
    channel = channel_username.lower()  # channel names are stored lower case

    async def build() -> ChannelActivity:
        found = await fetch_one(pool, CHANNEL_SQL, {"channel": channel})
        if found is None:
            raise HTTPException(404, f"unknown channel {channel_username!r}: see /api/channels")
        start, end = date_from or found["first_day"], date_to or found["last_day"]
        rows = await fetch_all(
            pool,
            sql.SQL(ACTIVITY_SQL).format(bucket=sql.Identifier(_BUCKETS[period])),
            {"channel": channel, "date_from": start, "date_to": end},
        )
        points = [
            ActivityPoint(
                **row,
                media_share=row["image_post_count"] / row["post_count"] if row["post_count"] else 0,
                views_per_post=(
                    row["view_count"] / row["posts_with_views"] if row["posts_with_views"] else None
                ),
            )
            for row in rows
        ]
        return ChannelActivity(
            channel_username=found["channel_username"],
            period=period,
            date_from=start,
            date_to=end,
            data=points,
            count=len(points),
        )

    return await cached_json(cache, ("activity", channel, period, date_from, date_to), build)
