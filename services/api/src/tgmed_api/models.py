"""Response schemas. Lists carry `data` and `count` (the number of items in `data`,
unless a field says otherwise)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

NO_NUL = r"^[^\x00]*$"
"""Text parameters: PostgreSQL text cannot hold NUL, so one is refused (422) up front."""


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it.")


class Status(BaseModel):
    status: Literal["ok", "ready"]


class Channel(BaseModel):
    channel_username: str
    channel_title: str
    first_post_at: datetime
    last_post_at: datetime
    post_count: int = Field(ge=0)
    image_post_count: int = Field(ge=0)
    view_count: int | None = Field(
        ge=0,
        description="Views summed over the posts whose view count is known; null when no "
        "post's views are known (Telegram Desktop exports carry none). Unknown is null "
        "everywhere in this API, never 0.",
    )
    forward_count: int | None = Field(ge=0, description="Forwards of the posts; null when unknown.")
    reply_count: int | None = Field(ge=0, description="Replies to the posts; null when unknown.")


class ChannelList(BaseModel):
    data: list[Channel]
    count: int = Field(ge=0)


class ActivityPoint(BaseModel):
    period_start: date = Field(description="The day, or the Monday starting the week.")
    post_count: int = Field(ge=0)
    view_count: int | None = Field(
        ge=0,
        description="Views of the period's posts whose view count is known; null when none "
        "is known (a quiet period, or posts from an export).",
    )
    views_per_post: float | None = Field(
        ge=0, description="view_count over the posts with a known count; null when none."
    )
    forward_count: int | None = Field(ge=0, description="null when no post's count is known.")
    reply_count: int | None = Field(ge=0, description="null when no post's count is known.")
    image_post_count: int = Field(ge=0)
    media_share: float = Field(ge=0, le=1, description="Share of the posts with a photo.")


class ChannelActivity(BaseModel):
    channel_username: str
    period: Literal["day", "week"]
    date_from: date = Field(description="First day counted (Addis Ababa days).")
    date_to: date = Field(description="Last day counted.")
    data: list[ActivityPoint]
    count: int = Field(ge=0)


class TopItem(BaseModel):
    key: str = Field(description="Product key (text) or detected class name (image).")
    name: str
    category: str | None = Field(description="Product category; null for image classes.")
    occurrences: int = Field(ge=0, description="Text mentions, or objects detected.")
    channel_count: int = Field(ge=0)
    channels: list[str]


class TopProducts(BaseModel):
    source: Literal["text", "image"]
    data: list[TopItem]
    count: int = Field(ge=0)


class MessageHit(BaseModel):
    message_key: str
    channel_username: str
    message_id: int
    posted_at: datetime
    text: str
    view_count: int | None = Field(
        ge=0, description="Views when known; null when unknown (exports carry none)."
    )
    rank: float = Field(ge=0, description="Full-text rank (higher is closer).")


class SearchResults(BaseModel):
    query: str
    total: int = Field(
        ge=0,
        description="Messages matching the query over all pages, counted up to "
        "`total_limit` (200, or the end of the page asked for); when `total_is_exact` is "
        "false there are more.",
    )
    total_is_exact: bool
    total_limit: int
    limit: int
    offset: int
    data: list[MessageHit]
    count: int = Field(ge=0)


class ClassCount(BaseModel):
    class_name: str
    count: int = Field(ge=0)


class ChannelVisual(BaseModel):
    channel_username: str
    post_count: int = Field(ge=0)
    image_post_count: int = Field(ge=0)
    image_post_share: float = Field(ge=0, le=1)
    images_analyzed: int = Field(ge=0, description="Photos with a detection record.")
    categories: dict[str, int] = Field(
        description="Photos per category: promotional, product_display, lifestyle, other."
    )
    top_classes: list[ClassCount] = Field(description="The most detected object classes.")


class VisualContent(BaseModel):
    data: list[ChannelVisual]
    count: int = Field(ge=0)


class PriceStats(BaseModel):
    price_count: int = Field(ge=0)
    min_price: float
    median_price: float
    max_price: float


class PricePoint(BaseModel):
    price: float = Field(description="A price given, in birr.")
    count: int = Field(ge=1, description="How many times it was given.")


class ChannelPrice(PriceStats):
    channel_username: str
    latest_price: float = Field(description="The price in the channel's newest post.")
    latest_at: datetime
    points: list[PricePoint] = Field(description="Every price given, lowest first.")


class PriceHistoryPoint(PriceStats):
    channel_username: str
    period_start: date = Field(description="The day, or the Monday starting the week.")
    latest_price: float
    latest_at: datetime


class PriceHistory(BaseModel):
    product_key: str
    product_name: str
    currency: Literal["ETB"] = "ETB"
    period: Literal["day", "week"]
    data: list[PriceHistoryPoint] = Field(description="Per channel and period, oldest first.")
    count: int = Field(ge=0)


class PriceReport(BaseModel):
    product_key: str
    product_name: str
    currency: Literal["ETB"] = "ETB"
    overall: PriceStats | None = Field(description="Over every channel; null when no price.")
    data: list[ChannelPrice]
    count: int = Field(ge=0)
