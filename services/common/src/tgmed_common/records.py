"""Record types of the lake contract. Every line of a lake JSONL file is one of these.

A change to a record's fields bumps its schema version; readers reject versions they do
not know instead of guessing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

MESSAGE_SCHEMA_VERSION = 1
DETECTION_SCHEMA_VERSION = 2
# version 1 (before content_hash and reused_from) is still read: lakes keep their files
DETECTION_READABLE_VERSIONS = (1, 2)

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


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("schema_version", mode="before", check_fields=False)
    @classmethod
    def _known_version(cls, value: object) -> object:
        expected = cls.model_fields["schema_version"].default
        if value != expected:
            raise ValueError(
                f"schema_version {value!r} is not supported by this reader "
                f"(it reads version {expected}); upgrade the stage or rewrite the file"
            )
        return value


class MessageRecord(_Record):
    """One Telegram channel post as scraped or imported."""

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
    forwarded_from: str | None = None
    reply_to_message_id: int | None = None
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

    @field_validator("schema_version", mode="before")
    @classmethod
    def _known_version(cls, value: object) -> object:  # overrides _Record's: reads 1 and 2
        if value not in DETECTION_READABLE_VERSIONS:
            raise ValueError(
                f"schema_version {value!r} is not supported by this reader (it reads "
                f"versions {DETECTION_READABLE_VERSIONS}); upgrade the stage or rewrite the file"
            )
        return value
