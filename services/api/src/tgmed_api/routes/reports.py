"""Reports over the report marts (dbt `models/reports`): top products, top detected
objects, visual content per channel, a product's prices. Each reads a few pre-aggregated
rows (per channel and day, or per product and channel), so an uncached answer costs
milliseconds whatever the number of messages; filters are one channel and a date range."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from psycopg import sql

from tgmed_api.db import fetch_all, fetch_one
from tgmed_api.deps import CacheDep, FilterDep, PoolDep, ReportFilter, cached_json
from tgmed_api.models import (
    NO_NUL,
    ChannelPrice,
    ChannelVisual,
    ClassCount,
    ErrorBody,
    PriceHistory,
    PriceHistoryPoint,
    PricePoint,
    PriceReport,
    PriceStats,
    ProductCandidate,
    ProductCandidates,
    TopItem,
    TopProducts,
    VisualContent,
)

router = APIRouter(prefix="/api/reports", tags=["reports"])

BAD_FILTER = {422: {"description": "Invalid parameters (for example `from` after `to`)"}}

# all time: one row per (product, channel); a date range: per (product, channel, day)
TOP_TEXT_SQL = """
with per_channel as (
    select product_key, channel_key, sum(mention_count) as mentions
    from marts.{table}
    where mention_count > 0 {where}
    group by product_key, channel_key
)
select
    per_channel.product_key as key,
    p.product_name as name,
    p.category,
    sum(per_channel.mentions)::bigint as occurrences,
    count(*) as channel_count,
    array_agg(per_channel.channel_key order by per_channel.channel_key) as channels
from per_channel
inner join marts.dim_products as p using (product_key)
group by per_channel.product_key, p.product_name, p.category
order by occurrences desc, key
limit %(limit)s
"""

TOP_IMAGE_SQL = """
with per_channel as (
    select class_name, channel_key, sum(object_count) as objects
    from marts.rpt_channel_objects
    where true {where}
    group by class_name, channel_key
)
select
    class_name as key,
    class_name as name,
    null as category,
    sum(objects)::bigint as occurrences,
    count(*) as channel_count,
    array_agg(channel_key order by channel_key) as channels
from per_channel
group by class_name
order by occurrences desc, key
limit %(limit)s
"""

VISUAL_SQL = """
with posts as (
    select channel_key, sum(post_count)::bigint as post_count,
        sum(image_post_count)::bigint as image_post_count
    from marts.rpt_channel_daily
    where true {where}
    group by channel_key
),
images as (
    select channel_key, sum(photos)::bigint as images_analyzed,
        jsonb_object_agg(image_category, photos) as categories
    from (
        select channel_key, image_category, sum(image_count) as photos
        from marts.rpt_channel_images
        where true {where}
        group by channel_key, image_category
    ) as per_category
    group by channel_key
),
classes as (
    select channel_key, class_name, sum(object_count) as objects,
        row_number() over (
            partition by channel_key order by sum(object_count) desc, class_name
        ) as place
    from marts.rpt_channel_objects
    where true {where}
    group by channel_key, class_name
),
top_classes as (
    select channel_key,
        jsonb_agg(jsonb_build_object('class_name', class_name, 'count', objects) order by place)
            as top_classes
    from classes
    where place <= %(top)s
    group by channel_key
)
select
    posts.channel_key as channel_username,
    posts.post_count,
    posts.image_post_count,
    coalesce(i.images_analyzed, 0) as images_analyzed,
    coalesce(i.categories, '{{}}'::jsonb) as categories,
    coalesce(t.top_classes, '[]'::jsonb) as top_classes
from posts
left join images as i using (channel_key)
left join top_classes as t using (channel_key)
order by posts.image_post_count desc, posts.channel_key
"""

# Candidate products: names in no catalog, most posts first (rpt_product_candidates: one
# row per name, a few hundred at most).
CANDIDATES_SQL = """
select
    as_written as name,
    candidate_name as key,
    post_count,
    channel_count,
    channels,
    first_posted_at,
    last_posted_at,
    examples
from marts.rpt_product_candidates
where post_count >= %(min_posts)s
    and (%(channel)s::text is null or %(channel)s = any(channels))
order by post_count desc, channel_count desc, candidate_name
limit %(limit)s
"""

# A product by key, name or any alias (English, brand or Amharic), case-insensitive.
PRODUCT_SQL = """
select p.product_key, p.product_name
from marts.dim_products as p
where lower(p.product_key) = lower(%(product)s)
    or lower(p.product_name) = lower(%(product)s)
    or exists (
        select 1 from marts.product_aliases as a
        where a.product_key = p.product_key and lower(a.alias) = lower(%(product)s)
    )
order by p.product_key
limit 1
"""

# The product's price histogram per channel: all time from rpt_price_points (a few
# dozen rows), a date range from the daily histogram.
POINTS_ALL_SQL = """
select channel_key, price_birr::float8 as price, price_count as count, last_posted_at
from marts.rpt_price_points
where product_key = %(product)s {where}
"""
POINTS_RANGE_SQL = """
select channel_key, price_birr::float8 as price, sum(price_count)::integer as count,
    max(last_posted_at) as last_posted_at
from marts.rpt_price_points_daily
where product_key = %(product)s {where}
group by channel_key, price_birr
"""
# A product's price statistics per channel and period. The weekly history reads them as
# they are from rpt_price_stats_weekly (a few hundred rows for a product) for every week
# wholly inside its range (HISTORY_WEEKS_SQL). The partial weeks at a range's ends, and
# the day period, fold the daily price histogram (rows of price, how
# often, when last) and computes them here in PostgreSQL with the mart's arithmetic: min,
# max, the exact median (the mean of the two middle prices for an even count, as
# statistics.median: a price covers positions [upto - n, upto) of the sorted prices) and
# the latest price (the newest post's; the higher price on a tie).
HISTORY_WEEKLY_SQL = """
select
    channel_key as channel_username,
    week_start_date as period_start,
    price_count,
    min_price::float8 as min_price,
    median_price::float8 as median_price,
    max_price::float8 as max_price,
    latest_price::float8 as latest_price,
    latest_at
from marts.rpt_price_stats_weekly
where product_key = %(product)s {where}
order by channel_key, week_start_date
"""
HISTORY_SQL = """
with points as (
    {points}
),
ranked as (
    select
        points.*,
        sum(n) over (partition by channel_key, period_start order by price) as upto,
        sum(n) over (partition by channel_key, period_start) as total
    from points
)
select
    channel_key as channel_username,
    period_start,
    total::integer as price_count,
    min(price)::float8 as min_price,
    (((min(price) filter (where upto - n <= (total - 1) / 2 and (total - 1) / 2 < upto))
        + (min(price) filter (where upto - n <= total / 2 and total / 2 < upto))) / 2)::float8
        as median_price,
    max(price)::float8 as max_price,
    (array_agg(price order by last_posted_at desc, price desc))[1]::float8 as latest_price,
    max(last_posted_at) as latest_at
from ranked
group by channel_key, period_start, total
order by channel_key, period_start
"""
HISTORY_DAILY_POINTS = """
select d.channel_key, dates.{bucket} as period_start, d.price_birr as price,
    sum(d.price_count) as n, max(d.last_posted_at) as last_posted_at
from marts.rpt_price_points_daily as d
inner join marts.dim_dates as dates using (date_key)
where d.product_key = %(product)s {where}
group by d.channel_key, dates.{bucket}, d.price_birr
"""
_BUCKETS = {"day": "date_key", "week": "week_start_date"}
# A weekly history over a date range: the weeks wholly inside it as they are from
# rpt_price_stats_weekly, only the partial weeks at its ends folded from the daily
# histogram (a quarter's range folded whole was the slowest report, docs/benchmarks.md).
HISTORY_WEEKS_SQL = """
select * from ({whole}) as whole_weeks
union all
select * from ({edges}) as edge_weeks
order by channel_username, period_start
"""


def _whole_weeks(date_from: date | None, date_to: date | None) -> tuple[date, date] | None:
    """The first and the last Monday of the weeks (Monday to Sunday) wholly inside the
    range, open ends as far as the data goes; None when no week is."""
    first = date_from + timedelta(days=-date_from.weekday() % 7) if date_from else date.min
    last = date_to - timedelta(days=(date_to.weekday() + 1) % 7 + 6) if date_to else date.max
    return (first, last) if first <= last else None


def _stats(points: list[tuple[float, int, datetime]]) -> dict[str, Any]:
    """min, exact median (the mean of the two middle prices for an even count, as
    statistics.median), max and the latest price of a histogram [(price, count, last)]."""
    ordered = sorted(points)
    total = sum(count for _, count, _ in ordered)

    def nth(n: int) -> float:  # 0-based position in the sorted prices
        seen = 0
        for price, count, _ in ordered:
            seen += count
            if n < seen:
                return price
        raise IndexError(n)

    middle = (nth((total - 1) // 2) + nth(total // 2)) / 2
    latest = max(ordered, key=lambda p: (p[2], p[0]))
    return {
        "price_count": total,
        "min_price": ordered[0][0],
        "median_price": middle,
        "max_price": ordered[-1][0],
        "latest_price": latest[0],
        "latest_at": latest[2],
    }


async def _find_product(pool, product: str) -> dict[str, Any]:
    found = await fetch_one(pool, PRODUCT_SQL, {"product": product.strip()})
    if found is None:
        raise HTTPException(404, f"unknown product {product!r}: use a product key, name or alias")
    return found


def _query(template: str, where: ReportFilter, prefix: str = "", **names: str) -> sql.Composed:
    return sql.SQL(template).format(
        where=where.where(prefix=prefix), **{k: sql.Identifier(v) for k, v in names.items()}
    )


ProductParam = Annotated[
    str,
    Query(
        min_length=1,
        max_length=100,
        pattern=NO_NUL,
        description="Product key, name or alias (English, brand or Amharic), any case",
    ),
]


@router.get(
    "/top-products",
    response_model=TopProducts,
    summary="The most mentioned products (text) or most detected object classes (image)",
    responses=BAD_FILTER,
)
async def top_products(
    pool: PoolDep,
    cache: CacheDep,
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    source: Annotated[Literal["text", "image"], Query()] = "text",
) -> Response:
    async def build() -> TopProducts:
        if source == "text":
            table = "rpt_product_daily" if where.has_dates else "rpt_product_channel"
            query = _query(TOP_TEXT_SQL, where, table=table)
        else:
            query = _query(TOP_IMAGE_SQL, where)
        rows = await fetch_all(pool, query, {**where.params(), "limit": limit})
        return TopProducts(source=source, data=[TopItem(**r) for r in rows], count=len(rows))

    return await cached_json(cache, ("top-products", limit, source, where.key()), build)


@router.get(
    "/visual-content",
    response_model=VisualContent,
    summary="Per channel: photos, share of posts with photos, categories, top classes",
    responses=BAD_FILTER,
)
async def visual_content(
    pool: PoolDep,
    cache: CacheDep,
    where: FilterDep,
    top: Annotated[int, Query(ge=1, le=20, description="Classes listed per channel")] = 5,
) -> Response:
    async def build() -> VisualContent:
        rows = await fetch_all(pool, _query(VISUAL_SQL, where), {**where.params(), "top": top})
        data = [
            ChannelVisual(
                channel_username=r["channel_username"],
                post_count=r["post_count"],
                image_post_count=r["image_post_count"],
                image_post_share=r["image_post_count"] / r["post_count"] if r["post_count"] else 0,
                images_analyzed=r["images_analyzed"],
                categories=r["categories"],
                top_classes=[ClassCount(**c) for c in r["top_classes"]],
            )
            for r in rows
        ]
        return VisualContent(data=data, count=len(data))

    return await cached_json(cache, ("visual-content", top, where.key()), build)


@router.get(
    "/prices",
    response_model=PriceReport,
    summary="A product's prices per channel (birr): min/median/max, latest, every price",
    responses={404: {"model": ErrorBody, "description": "No such product"}, **BAD_FILTER},
)
async def prices(
    pool: PoolDep, cache: CacheDep, where: FilterDep, product: ProductParam
) -> Response:
    async def build() -> PriceReport:
        found = await _find_product(pool, product)
        template = POINTS_RANGE_SQL if where.has_dates else POINTS_ALL_SQL
        rows = await fetch_all(
            pool, _query(template, where), {**where.params(), "product": found["product_key"]}
        )
        per_channel: dict[str, list] = defaultdict(list)
        for r in rows:
            per_channel[r["channel_key"]].append((r["price"], r["count"], r["last_posted_at"]))
        channels = [
            ChannelPrice(
                channel_username=channel,
                **_stats(points),
                points=[PricePoint(price=p, count=n) for p, n, _ in sorted(points)],
            )
            for channel, points in sorted(per_channel.items())
        ]
        everything = [p for points in per_channel.values() for p in points]
        overall = None
        if everything:
            stats = _stats(everything)
            overall = PriceStats(**{k: v for k, v in stats.items() if not k.startswith("latest")})
        return PriceReport(
            product_key=found["product_key"],
            product_name=found["product_name"],
            overall=overall,
            data=channels,
            count=len(channels),
        )

    return await cached_json(cache, ("prices", product.strip().lower(), where.key()), build)


@router.get(
    "/prices/history",
    response_model=PriceHistory,
    summary="A product's min/median/max and latest price per channel, per day or week",
    responses={404: {"model": ErrorBody, "description": "No such product"}, **BAD_FILTER},
)
async def price_history(
    pool: PoolDep,
    cache: CacheDep,
    where: FilterDep,
    product: ProductParam,
    period: Annotated[Literal["day", "week"], Query()] = "week",
) -> Response:
    async def build() -> PriceHistory:
        found = await _find_product(pool, product)
        weeks = _whole_weeks(where.date_from, where.date_to) if period == "week" else None
        params = {**where.params(), "product": found["product_key"]}
        if period == "week" and not where.has_dates:
            query = _query(HISTORY_WEEKLY_SQL, where)
        elif weeks is not None:
            params |= {"first_week": weeks[0], "last_week": weeks[1]}
            inside = " and week_start_date between %(first_week)s and %(last_week)s"
            outside = (
                " and (dates.week_start_date < %(first_week)s"
                " or dates.week_start_date > %(last_week)s)"
            )
            whole = sql.SQL(HISTORY_WEEKLY_SQL.replace("order by channel_key, week_start_date", ""))
            edges = sql.SQL(HISTORY_DAILY_POINTS).format(
                where=where.where(prefix="d.") + sql.SQL(outside),
                bucket=sql.Identifier("week_start_date"),
            )
            query = sql.SQL(HISTORY_WEEKS_SQL).format(
                whole=whole.format(where=where.where(dates=False) + sql.SQL(inside)),
                edges=sql.SQL(HISTORY_SQL.replace("order by channel_key, period_start", "")).format(
                    points=edges
                ),
            )
        else:
            points = sql.SQL(HISTORY_DAILY_POINTS).format(
                where=where.where(prefix="d."), bucket=sql.Identifier(_BUCKETS[period])
            )
            query = sql.SQL(HISTORY_SQL).format(points=points)
        rows = await fetch_all(pool, query, params)
        points = [PriceHistoryPoint(**r) for r in rows]
        return PriceHistory(
            product_key=found["product_key"],
            product_name=found["product_name"],
            period=period,
            data=points,
            count=len(points),
        )

    key = ("price-history", product.strip().lower(), period, where.key())
    return await cached_json(cache, key, build)


@router.get(
    "/product-candidates",
    response_model=ProductCandidates,
    summary="Names that look like products but are in no catalog (discovery)",
)
async def product_candidates(
    pool: PoolDep,
    cache: CacheDep,
    min_posts: Annotated[int, Query(ge=1, le=1000, description="Named in at least")] = 2,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    channel: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="Named in this channel"),
    ] = None,
) -> Response:
    channel = channel.lower() if channel else None

    async def build() -> ProductCandidates:
        rows = await fetch_all(
            pool, CANDIDATES_SQL, {"min_posts": min_posts, "limit": limit, "channel": channel}
        )
        data = [
            ProductCandidate(
                **{k: v for k, v in row.items() if k != "examples"},
                examples=[
                    {
                        "message_key": e["message_key"],
                        "channel_username": e["channel_key"],
                        "posted_at": e["posted_at"],
                        "text": e["text"] or "",
                    }
                    for e in row["examples"] or []
                ],
            )
            for row in rows
        ]
        return ProductCandidates(data=data, count=len(data))

    return await cached_json(cache, ("product-candidates", min_posts, limit, channel), build)
