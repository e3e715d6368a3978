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


class CandidateExample(BaseModel):
    message_key: str
    channel_username: str
    posted_at: datetime
    text: str = Field(description="The post's text, its first 280 characters.")


class ProductCandidate(BaseModel):
    name: str = Field(description="The name as most often written.")
    key: str = Field(description="The name in lower case (one row per name).")
    post_count: int = Field(ge=0, description="Posts naming it right before a price or dose.")
    channel_count: int = Field(ge=0)
    channels: list[str]
    first_posted_at: datetime
    last_posted_at: datetime
    examples: list[CandidateExample] = Field(description="The three newest posts naming it.")


class ProductCandidates(BaseModel):
    """Names that look like products (right before a price or a dose) but are in no
    catalog: what an analyst reviews to add a product (services/extract/README.md)."""

    data: list[ProductCandidate]
    count: int = Field(ge=0)


class PriceReport(BaseModel):
    product_key: str
    product_name: str
    currency: Literal["ETB"] = "ETB"
    overall: PriceStats | None = Field(description="Over every channel; null when no price.")
    data: list[ChannelPrice]
    count: int = Field(ge=0)


# --- engagement (from Telegram scrapes: exports carry no subscribers or view readings) --


class SubscriberPoint(BaseModel):
    channel_username: str
    period_start: date = Field(description="The day, or the Monday starting the week.")
    subscriber_count: int | None = Field(
        ge=0,
        description="Subscribers at the period's last snapshot with a known count; null when "
        "the channel hid it.",
    )
    subscriber_change: int | None = Field(
        description="Change since the channel's previous period in this answer; null for "
        "the first, or when either count is unknown."
    )
    snapshot_count: int = Field(ge=0, description="Scrapes that read the channel's info.")
    last_observed_at: datetime = Field(description="The period's last snapshot (UTC).")


class Subscribers(BaseModel):
    period: Literal["day", "week"]
    data: list[SubscriberPoint] = Field(
        description="Per channel and period with a snapshot, oldest first. Empty when no "
        "Telegram scrape has run: exports carry no subscriber counts."
    )
    count: int = Field(ge=0)


class EngagementPoint(BaseModel):
    channel_username: str
    period_start: date = Field(description="The day (or week) the posts were published.")
    post_count: int = Field(ge=0)
    posts_with_views: int = Field(ge=0)
    views_per_post: float | None = Field(
        ge=0, description="Views at the posts' newest scrape over posts_with_views."
    )
    posts_with_subscribers: int = Field(
        ge=0, description="Posts read by a scrape that knew the channel's subscribers."
    )
    views_per_subscriber: float | None = Field(
        ge=0,
        description="Mean over those posts of views / subscribers at their newest reading "
        "(engagement rate); null when none.",
    )
    posts_with_reactions: int = Field(ge=0, description="Posts whose reactions are known.")
    reaction_count: int | None = Field(ge=0, description="Reactions on them; null when none.")
    reactions_per_post: float | None = Field(ge=0)


class Engagement(BaseModel):
    period: Literal["day", "week"]
    data: list[EngagementPoint] = Field(description="Per channel and period, oldest first.")
    count: int = Field(ge=0)


class ReactionChannel(BaseModel):
    channel_username: str
    reaction_count: int = Field(ge=0)
    post_count: int = Field(ge=0)


class ReactionItem(BaseModel):
    reaction: str = Field(
        description="The emoji; custom_emoji:<document id>; paid (Telegram Stars)."
    )
    reaction_kind: Literal["emoji", "custom_emoji", "paid"]
    reaction_count: int = Field(ge=0, description="Users who reacted so.")
    post_count: int = Field(ge=0, description="Posts with this reaction.")
    channels: list[ReactionChannel]


class Reactions(BaseModel):
    data: list[ReactionItem] = Field(description="The most given reactions, most first.")
    count: int = Field(ge=0)


class GrowthPoint(BaseModel):
    channel_username: str
    age_hours_from: int = Field(ge=0, description="The age bucket: hours since posting, from.")
    age_hours_to: int | None = Field(description="... to (exclusive); null: a week or more.")
    reading_count: int = Field(ge=0, description="Readings of posts' counts at that age.")
    post_count: int = Field(ge=0)
    mean_hours_since_post: float = Field(ge=0)
    mean_views: float | None = Field(ge=0, description="Mean views at those readings.")
    mean_views_per_subscriber: float | None = Field(ge=0)


class ViewGrowth(BaseModel):
    data: list[GrowthPoint] = Field(
        description="Per channel and age bucket, youngest first. Empty when no Telegram "
        "scrape has run: exports carry no view readings."
    )
    count: int = Field(ge=0)
