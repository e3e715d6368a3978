"""Record types of the lake contract. Every line of a lake JSONL file is one of these.

A change to a record's fields bumps its schema version; readers reject versions they do
not know instead of guessing. A reader may accept older versions whose records are a
subset of the current fields (message records of version 1 read as version 2 with the
new fields empty); writers always write the current version.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

MESSAGE_SCHEMA_VERSION = 2  # 2: reactions, forward source id and original message id
DETECTION_SCHEMA_VERSION = 2  # 2: content_hash and reused_from (detection reuse)
OBSERVATION_SCHEMA_VERSION = 1
SNAPSHOT_SCHEMA_VERSION = 1
EXTRACTION_SCHEMA_VERSION = 1

CHANNEL_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")

MediaType = Literal[
    "photo",
    "video",
    "animation",
    "document",
    "audio",
    "voice",
    "sticker",
    "webpage",
    "poll",
    "geo",
    "contact",
    "other",
]


def canonical_channel(name: str) -> str:
    """Telegram usernames are case-insensitive: the lake keys channels in lower case."""
    cleaned = name.strip().removeprefix("@").lower()
    if not CHANNEL_PATTERN.fullmatch(cleaned):
        raise ValueError(
            f"{name!r} is not a channel username (letters, digits and _ only, at most 64)"
        )
    return cleaned


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


ChannelName = Annotated[str, AfterValidator(canonical_channel)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


@functools.cache
def readable_versions(model: type[BaseModel]) -> tuple[int, ...]:
    """The schema versions `model` reads: its older ones and its current one (cached:
    `model_fields` costs ~10 us per access, a third of a message line's validation)."""
    current = model.model_fields["schema_version"].default
    return (*model._older_versions, current)  # type: ignore[attr-defined]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # older versions this reader still reads (their fields are a subset of today's)
    _older_versions: ClassVar[tuple[int, ...]] = ()

    @field_validator("schema_version", mode="before", check_fields=False)
    @classmethod
    def _known_version(cls, value: object) -> object:
        readable = readable_versions(cls)
        if isinstance(value, bool) or value not in readable:
            versions = " and ".join(str(v) for v in readable)
            raise ValueError(
                f"schema_version {value!r} is not supported by this reader "
                f"(it reads version {versions}); upgrade the stage or rewrite the file"
            )
        return value


class ReactionCount(BaseModel):
    """How many users reacted to a message with one reaction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["emoji", "custom_emoji", "paid"]
    # the emoji itself ("👍"); `custom_emoji:<document id>` for a custom emoji; `paid`
    reaction: str = Field(min_length=1)
    count: int = Field(ge=0)


Reactions = list[ReactionCount]


class MessageRecord(_Record):
    """One Telegram channel post as scraped or imported. A newer scrape of the same post
    (the refresh window re-reads recent posts) is a newer record; the warehouse keeps
    the newest."""

    _older_versions: ClassVar[tuple[int, ...]] = (1,)

    schema_version: int = MESSAGE_SCHEMA_VERSION
    source: Literal["telethon", "export"]
    channel_username: ChannelName
    channel_title: str | None = None
    channel_id: int | None = None
    message_id: int = Field(gt=0)
    date: UtcDatetime
    edit_date: UtcDatetime | None = None
    text: str = ""
    views: int | None = Field(default=None, ge=0)
    forwards: int | None = Field(default=None, ge=0)
    replies: int | None = Field(default=None, ge=0)
    media_type: MediaType | None = None
    media_path: str | None = None
    grouped_id: int | None = None
    # a forward: the source's readable name (its title or the hidden sender's name; when
    # no name is known, "channel:<id>"), its stable peer id (Bot API style: -100...
    # for channels) and the post's id in the source channel
    forwarded_from: str | None = None
    forwarded_from_id: int | None = None
    forwarded_message_id: int | None = Field(default=None, gt=0)
    reply_to_message_id: int | None = None
    # counts per reaction; [] when the post has none, null when unknown (an export
    # without reactions)
    reactions: Reactions | None = None
    scraped_at: UtcDatetime


class Detection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    class_id: int = Field(ge=0)
    class_name: str
    confidence: float = Field(ge=0.0, le=1.0)
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


class DetectionRecord(_Record):
    """What one model found in one lake photo. An image with nothing found, or one that
    could not be read (status failed), still gets a record so it is not processed again.

    Version 2 adds `content_hash` (sha256 of the photo file's bytes) and `reused_from`:
    a photo whose bytes already had a record for the same model (a repost, a forward,
    the same photo in another channel's album) is not run through the model again; its
    record copies that record's findings and names, in `reused_from`, the lake path of
    the photo the model actually ran on."""

    # version 1 (before content_hash and reused_from) is still read: lakes keep their files
    _older_versions: ClassVar[tuple[int, ...]] = (1,)

    schema_version: int = DETECTION_SCHEMA_VERSION
    channel_username: ChannelName
    message_id: int = Field(gt=0)
    media_path: str
    model_name: str
    model_hash: str
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    image_width: int | None = Field(default=None, gt=0)
    image_height: int | None = Field(default=None, gt=0)
    detections: list[Detection] = Field(default_factory=list)
    detected_at: UtcDatetime
    content_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    reused_from: str | None = None


class MessageObservationRecord(_Record):
    """One reading of a post's counts at one time. Every scrape that reads a post (its
    first read, and each refresh) writes one, so views growth can be modelled; the
    message record itself only keeps the newest counts in the warehouse."""

    schema_version: int = OBSERVATION_SCHEMA_VERSION
    source: Literal["telethon"] = "telethon"
    channel_username: ChannelName
    channel_id: int | None = None
    message_id: int = Field(gt=0)
    message_date: UtcDatetime
    views: int | None = Field(default=None, ge=0)
    forwards: int | None = Field(default=None, ge=0)
    replies: int | None = Field(default=None, ge=0)
    reactions: Reactions | None = None
    observed_at: UtcDatetime


class ChannelSnapshotRecord(_Record):
    """What a channel looked like when it was scraped: subscribers (from the full
    channel info), title and description. One per channel per scrape."""

    schema_version: int = SNAPSHOT_SCHEMA_VERSION
    source: Literal["telethon"] = "telethon"
    channel_username: ChannelName
    channel_id: int | None = None
    title: str | None = None
    description: str | None = None
    # null when Telegram does not say (a channel that hides its member count)
    subscribers: int | None = Field(default=None, ge=0)
    observed_at: UtcDatetime


class ExtractedMention(BaseModel):
    """A product a post names: `product` is the knowledge base's canonical name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str
    category: str
    brand: str | None = None
    parent: str | None = None  # the product it belongs to (strips -> their glucometer)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    as_written: str
    matched_by: str  # exact | amharic | fuzzy


class ExtractedPrice(BaseModel):
    """A price a post gives: for `product` (None: no product it surely belongs to), in
    `currency` (ETB for birr), `high` for a range, `old_price` for "was X now Y"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str | None = None
    category: str | None = None
    amount: float = Field(ge=0)
    high: float | None = None
    currency: str
    old_price: float | None = None
    strength: str | None = None
    size: str | None = None
    pack: str | None = None
    pack_count: int | None = None
    unit_price: float | None = None
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    as_written: str


class ExtractedService(BaseModel):
    """A fee for a service (repair, delivery, consultation): never a product's price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    product: str | None = None
    amount: float = Field(ge=0)
    high: float | None = None
    currency: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    as_written: str


class ExtractedCandidate(BaseModel):
    """A name that looks like a product (right before a price or a dose) but is in no
    catalog: what the discovery mart counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    context: str


class ExtractionRecord(_Record):
    """What the extract stage read in one post's text, under one extractor and knowledge
    version (`extractor_version`: both hashed into one tag). Every message gets one, an
    empty one too, so a newer scrape whose edited text names nothing replaces the older
    findings. `scraped_at` is the message record's: the newest scrape's extraction wins
    in the warehouse."""

    schema_version: int = EXTRACTION_SCHEMA_VERSION
    channel_username: ChannelName
    message_id: int = Field(gt=0)
    scraped_at: UtcDatetime
    extractor_version: str = Field(pattern=r"^[0-9a-z.+-]{1,64}$")
    extractor: str  # tgmed_extract.EXTRACTOR_VERSION
    knowledge: str  # tgmed_extract.knowledge_version()
    extracted_at: UtcDatetime
    mentions: list[ExtractedMention] = Field(default_factory=list)
    prices: list[ExtractedPrice] = Field(default_factory=list)
    services: list[ExtractedService] = Field(default_factory=list)
    candidates: list[ExtractedCandidate] = Field(default_factory=list)
