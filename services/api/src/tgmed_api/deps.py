"""What routes get from the app: the pool, the cache, and one way to answer JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Response
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from tgmed_api.cache import BuildCache
from tgmed_api.models import NO_NUL


# async, though they do not await: FastAPI runs a plain `def` dependency in its thread
# pool, a hand-off that cost a cached answer about half its throughput
async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_cache(request: Request) -> BuildCache:
    return request.app.state.cache


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
CacheDep = Annotated[BuildCache, Depends(get_cache)]


def json_response(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


async def cached_json(
    cache: BuildCache, key: Hashable, build: Callable[[], Awaitable[BaseModel]]
) -> Response:
    """The answer for `key`, from the cache or built (a model, serialized once)."""

    async def serialized() -> bytes:
        return (await build()).model_dump_json().encode()

    return json_response(await cache.get_or_build(key, serialized))


@dataclass(frozen=True)
class ReportFilter:
    """The dashboard's filters, shared by the reports: one channel (or all) and a date
    range of Addis Ababa days (open at either end)."""

    channel: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def key(self) -> tuple:
        return (self.channel, self.date_from, self.date_to)

    @property
    def has_dates(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def where(self, *, channel: bool = True, dates: bool = True, prefix: str = "") -> sql.Composed:
        """`and ...` conditions for the filters that are set (fixed SQL text with
        parameters %(channel)s, %(date_from)s, %(date_to)s; `prefix` a table alias)."""
        parts = []
        column = sql.SQL(prefix + "{}")
        if channel and self.channel is not None:
            parts.append(
                sql.SQL(" and {} = %(channel)s").format(column.format(sql.SQL("channel_key")))
            )
        if dates and self.date_from is not None:
            parts.append(
                sql.SQL(" and {} >= %(date_from)s").format(column.format(sql.SQL("date_key")))
            )
        if dates and self.date_to is not None:
            parts.append(
                sql.SQL(" and {} <= %(date_to)s").format(column.format(sql.SQL("date_key")))
            )
        return sql.Composed(parts)

    def params(self) -> dict:
        return {"channel": self.channel, "date_from": self.date_from, "date_to": self.date_to}


def check_range(request: Request, date_from: date | None, date_to: date | None) -> None:
    """422 for a range that ends before it starts or spans more than API_MAX_RANGE_DAYS
    (a range open at one end or both is bounded by the data: the cached default views)."""
    if date_from and date_to:
        if date_from > date_to:
            raise HTTPException(422, f"`from` ({date_from}) is after `to` ({date_to})")
        longest = request.app.state.settings.max_range_days
        if (date_to - date_from).days + 1 > longest:
            raise HTTPException(
                422,
                f"`from` {date_from} to `to` {date_to} spans {(date_to - date_from).days + 1}"
                f" days; at most {longest} (API_MAX_RANGE_DAYS), or leave the dates out for"
                " the whole history",
            )


async def report_filter(
    request: Request,
    channel: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=NO_NUL,
            description="Only this channel (Telegram username, any case); all when absent",
        ),
    ] = None,
    date_from: Annotated[
        date | None, Query(alias="from", description="First day counted (Addis Ababa days)")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day counted")] = None,
) -> ReportFilter:
    check_range(request, date_from, date_to)
    return ReportFilter(channel.strip().lower() if channel else None, date_from, date_to)


FilterDep = Annotated[ReportFilter, Depends(report_filter)]
