"""What each lake stream loads into: its record type, table, key and the columns taken
out of each record beside the full JSONB."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from tgmed_common.lake import DETECTIONS, EXTRACTIONS, MESSAGES, OBSERVATIONS, SNAPSHOTS, Lake
from tgmed_common.records import (
    ChannelSnapshotRecord,
    DetectionRecord,
    ExtractionRecord,
    MessageObservationRecord,
    MessageRecord,
)


@dataclass(frozen=True)
class Stream:
    name: str  # the lake stream, also the audit's stream name
    model: type[BaseModel]
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # extracted columns, in COPY order, before record/source_file
    newer: str  # the column that decides which version of a row wins
    values: Callable[[BaseModel], tuple[str, ...]]
    files: Callable[[Lake], list]

    @property
    def copy_columns(self) -> tuple[str, ...]:
        return (*self.columns, "record", "source_file")


def _message_values(record: MessageRecord) -> tuple[str, ...]:
    return (
        record.channel_username,
        str(record.message_id),
        record.date.isoformat(),
        record.scraped_at.isoformat(),
    )


def _observation_values(record: MessageObservationRecord) -> tuple[str, ...]:
    return (
        record.channel_username,
        str(record.message_id),
        record.observed_at.isoformat(),
        record.message_date.isoformat(),
    )


def _snapshot_values(record: ChannelSnapshotRecord) -> tuple[str, ...]:
    return (record.channel_username, record.observed_at.isoformat())


def _detection_values(record: DetectionRecord) -> tuple[str, ...]:
    return (
        record.channel_username,
        str(record.message_id),
        record.model_hash,
        record.detected_at.isoformat(),
    )


def _extraction_values(record: ExtractionRecord) -> tuple[str, ...]:
    return (
        record.channel_username,
        str(record.message_id),
        record.extractor_version,
        record.scraped_at.isoformat(),
        record.extracted_at.isoformat(),
    )


STREAMS: dict[str, Stream] = {
    "messages": Stream(
        name=MESSAGES,
        model=MessageRecord,
        table="raw.telegram_messages",
        key=("channel_username", "message_id"),
        columns=("channel_username", "message_id", "message_date", "scraped_at"),
        newer="scraped_at",
        values=_message_values,
        files=Lake.message_files,
    ),
    # every reading of a post's counts: keyed by when it was read, so two scrapes of the
    # same post are two rows (the same file loaded twice is still one)
    "observations": Stream(
        name=OBSERVATIONS,
        model=MessageObservationRecord,
        table="raw.telegram_message_observations",
        key=("channel_username", "message_id", "observed_at"),
        columns=("channel_username", "message_id", "observed_at", "message_date"),
        newer="observed_at",
        values=_observation_values,
        files=Lake.observation_files,
    ),
    "snapshots": Stream(
        name=SNAPSHOTS,
        model=ChannelSnapshotRecord,
        table="raw.telegram_channel_snapshots",
        key=("channel_username", "observed_at"),
        columns=("channel_username", "observed_at"),
        newer="observed_at",
        values=_snapshot_values,
        files=Lake.snapshot_files,
    ),
    "detections": Stream(
        name=DETECTIONS,
        model=DetectionRecord,
        table="raw.yolo_detections",
        key=("channel_username", "message_id", "model_hash"),
        columns=("channel_username", "message_id", "model_hash", "detected_at"),
        newer="detected_at",
        values=_detection_values,
        files=Lake.detection_files,
    ),
    # what the extract stage read in each message, per extractor version: the newest
    # scrape's extraction wins within a version; dbt takes each message's newest version
    "extractions": Stream(
        name=EXTRACTIONS,
        model=ExtractionRecord,
        table="raw.message_extractions",
        key=("channel_username", "message_id", "extractor_version"),
        columns=(
            "channel_username",
            "message_id",
            "extractor_version",
            "scraped_at",
            "extracted_at",
        ),
        newer="scraped_at",
        values=_extraction_values,
        files=Lake.extraction_files,
    ),
}

# what the scraper writes: `load telegram` loads them together
TELEGRAM_STREAMS = ("messages", "observations", "snapshots")
