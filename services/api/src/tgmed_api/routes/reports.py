"""Reports over the marts: top products, visual content per channel, price ranges."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from tgmed_api.db import fetch_all, fetch_one
from tgmed_api.deps import CacheDep, PoolDep, cached_json
from tgmed_api.models import (
    NO_NUL,
    ChannelPrice,
    ChannelVisual,
    ClassCount,
    ErrorBody,
    PriceReport,
    PriceStats,
    TopItem,
    TopProducts,
    VisualContent,
)

router = APIRouter(prefix="/api/reports", tags=["reports"])

# Counted per (product, channel) first, on the (product_key, channel_key) index, so the
# distinct channels need no sort of every mention.
TOP_TEXT_SQL = """
with per_channel as (
    select product_key, channel_key, count(*) as mentions
    from marts.fct_product_mentions
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
select
    class_name as key,
    class_name as name,
    null as category,
    count(*) as occurrences,
    count(distinct channel_key) as channel_count,
    array_agg(distinct channel_key order by channel_key) as channels
from marts.fct_image_detections
group by class_name
order by occurrences desc, key
limit %(limit)s
"""

VISUAL_SQL = """
with images as (
    select
        channel_key,
        sum(photos)::bigint as images_analyzed,
        jsonb_object_agg(image_category, photos) as categories
    from (
        select channel_key, image_category, count(*) as photos
        from marts.fct_images
        group by channel_key, image_category
    ) as per_category
    group by channel_key
),
classes as (
    select channel_key, class_name, count(*) as objects,
        row_number() over (
            partition by channel_key order by count(*) desc, class_name
        ) as place
    from marts.fct_image_detections
    group by channel_key, class_name
),
top_classes as (
    select
        channel_key,
        jsonb_agg(
            jsonb_build_object('class_name', class_name, 'count', objects) order by place
        ) as top_classes
    from classes
    where place <= %(top)s
    group by channel_key
)
select
    c.channel_username,
    c.post_count,
    c.image_post_count,
    coalesce(i.images_analyzed, 0) as images_analyzed,
    coalesce(i.categories, '{}'::jsonb) as categories,
    coalesce(t.top_classes, '[]'::jsonb) as top_classes
from marts.dim_channels as c
left join images as i using (channel_key)
left join top_classes as t using (channel_key)
order by c.image_post_count desc, c.channel_username
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

# One pass over the product's prices gives every channel's figures and the overall ones
# (grouping sets; channel_key is null on the overall row); each channel's latest price
# is one probe of the (product, channel, newest first) index (the dbt model's post-hook).
PRICES_SQL = """
with stats as (
    select
        channel_key,
        count(*) as price_count,
        min(price_birr)::float8 as min_price,
        percentile_cont(0.5) within group (order by price_birr) as median_price,
        max(price_birr)::float8 as max_price
    from marts.fct_product_prices
    where product_key = %(product)s
    group by grouping sets ((channel_key), ())
)
select stats.channel_key as channel_username, stats.*, latest.latest_price, latest.latest_at
from stats
left join lateral (
    select price_birr::float8 as latest_price, posted_at as latest_at
    from marts.fct_product_prices
    where product_key = %(product)s and channel_key = stats.channel_key
    order by posted_at desc, price_key desc
    limit 1
) as latest on true
order by stats.channel_key nulls first
"""


@router.get(
    "/top-products",
    response_model=TopProducts,
    summary="The most mentioned products (text) or most detected object classes (image)",
)
async def top_products(
    pool: PoolDep,
    cache: CacheDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    source: Annotated[Literal["text", "image"], Query()] = "text",
) -> Response:
    async def build() -> TopProducts:
        sql = TOP_TEXT_SQL if source == "text" else TOP_IMAGE_SQL
        rows = await fetch_all(pool, sql, {"limit": limit})
        return TopProducts(source=source, data=[TopItem(**r) for r in rows], count=len(rows))

    return await cached_json(cache, ("top-products", limit, source), build)


@router.get(
    "/visual-content",
    response_model=VisualContent,
    summary="Per channel: photos, share of posts with photos, categories, top classes",
)
async def visual_content(
    pool: PoolDep,
    cache: CacheDep,
    top: Annotated[int, Query(ge=1, le=20, description="Classes listed per channel")] = 5,
) -> Response:
    async def build() -> VisualContent:
        rows = await fetch_all(pool, VISUAL_SQL, {"top": top})
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

    return await cached_json(cache, ("visual-content", top), build)


@router.get(
    "/prices",
    response_model=PriceReport,
    summary="A product's price min/median/max and latest price per channel (birr)",
    responses={404: {"model": ErrorBody, "description": "No such product"}},
)
async def prices(
    pool: PoolDep,
    cache: CacheDep,
    product: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            pattern=NO_NUL,
            description="Product key, name or alias (English, brand or Amharic), any case",
        ),
    ],
) -> Response:
    wanted = product.strip()

    async def build() -> PriceReport:
        found = await fetch_one(pool, PRODUCT_SQL, {"product": wanted})
        if found is None:
            raise HTTPException(
                404, f"unknown product {product!r}: use a product key, name or alias"
            )
        rows = await fetch_all(pool, PRICES_SQL, {"product": found["product_key"]})
        overall = [r for r in rows if r["channel_username"] is None and r["price_count"]]
        channels = [ChannelPrice(**r) for r in rows if r["channel_username"] is not None]
        return PriceReport(
            product_key=found["product_key"],
            product_name=found["product_name"],
            overall=PriceStats(**overall[0]) if overall else None,
            data=channels,
            count=len(channels),
        )

    return await cached_json(cache, ("prices", wanted.lower()), build)
