"""The data lake: where every file lives, and the one way to write and read record files.

Layout (relative to LAKE_DIR):

    raw/telegram_messages/date=YYYY-MM-DD/channel=<name>/<run_id>-<part>.jsonl
    raw/telegram_message_observations/date=YYYY-MM-DD/channel=<name>/<run_id>-<part>.jsonl
    raw/telegram_channel_snapshots/date=YYYY-MM-DD/channel=<name>/<run_id>-<part>.jsonl
    raw/telegram_media/channel=<name>/<message_id>.<ext>
    raw/yolo_detections/date=YYYY-MM-DD/channel=<name>/<run_id>-<part>.jsonl
    raw/message_extractions/date=YYYY-MM-DD/channel=<name>/<run_id>-<part>-<version>.jsonl
    state/<stream>/channel=<name>.json
    state/locks/channel=<name>.lock   held while a process writes a channel
    quarantine/<stream>/<stamp>/<path>   (+ <path>.reason.json beside it)

Messages are partitioned by their own day; observations and snapshots by the day they
were read; detections by the day of detection; extractions as the message file they
were read from (its name, and the extractor version's tag). A record file's name is its writer's run
id and a part number (a run writes in batches, and each batch may touch the same day
again); the `*_file` methods take that name without `.jsonl`. In quarantine, `<stamp>`
is a fresh run id per quarantined file, and `<path>` is a lake file's path below
`raw/<stream>/` (moved there), or the name of a file from outside the lake (an export's
`result.json`, copied). The note (`.reason.json`) holds the original path, the reason
and when.

Nobody builds these paths by hand: use `Lake`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tgmed_common.atomic import (
    TEMP_MARKER,
    AtomicBatch,
    atomic_writer,
    is_temp,
    write_bytes_atomic,
)
from tgmed_common.records import (
    CHANNEL_PATTERN,
    ChannelSnapshotRecord,
    DetectionRecord,
    ExtractionRecord,
    MessageObservationRecord,
    MessageRecord,
    canonical_channel,
    readable_versions,
)

MESSAGES = "telegram_messages"
OBSERVATIONS = "telegram_message_observations"
SNAPSHOTS = "telegram_channel_snapshots"
MEDIA = "telegram_media"
DETECTIONS = "yolo_detections"
EXTRACTIONS = "message_extractions"
_NO_OFFSET = timedelta(0)
# what a channel's writer (scrape or import, holding the channel's lock) writes
CHANNEL_STREAMS = (MESSAGES, OBSERVATIONS, SNAPSHOTS)

R = TypeVar("R", bound=BaseModel)


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique per run: 20261122T105300Z-3f9a1c2b."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class LakeRecordError(ValueError):
    """A record file that does not honour the contract, with where and why."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{field}: {item['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Lake:
    root: Path

    # paths -----------------------------------------------------------------------------
    def _records_file(self, stream: str, day: date, channel: str, name: str) -> Path:
        channel = canonical_channel(channel)
        return (
            self.root
            / "raw"
            / stream
            / f"date={day:%Y-%m-%d}"
            / f"channel={channel}"
            / f"{name}.jsonl"
        )

    def message_file(self, day: date, channel: str, name: str) -> Path:
        """`name`: `<run_id>-<part>`, without `.jsonl`."""
        return self._records_file(MESSAGES, day, channel, name)

    def observation_file(self, day: date, channel: str, name: str) -> Path:
        """`name`: `<run_id>-<part>`, without `.jsonl`."""
        return self._records_file(OBSERVATIONS, day, channel, name)

    def snapshot_file(self, day: date, channel: str, name: str) -> Path:
        """`name`: `<run_id>-<part>`, without `.jsonl`."""
        return self._records_file(SNAPSHOTS, day, channel, name)

    def detection_file(self, day: date, channel: str, name: str) -> Path:
        """`name`: `<run_id>-<part>`, without `.jsonl`."""
        return self._records_file(DETECTIONS, day, channel, name)

    def extraction_file(self, day: date, channel: str, name: str) -> Path:
        """`name`: `<source message file's name>-<extractor version tag>`: one extraction
        file per message file and version (its existence says the file is done)."""
        return self._records_file(EXTRACTIONS, day, channel, name)

    def media_file(self, channel: str, message_id: int, ext: str) -> Path:
        ext = ext.lower().lstrip(".") or "bin"
        return (
            self.root
            / "raw"
            / MEDIA
            / f"channel={canonical_channel(channel)}"
            / (f"{message_id}.{ext}")
        )

    def media_owner(self, path: Path) -> tuple[str, int]:
        """(channel, message id) of a media file, from its path."""
        folder, stem = path.parent.name, path.stem
        if not folder.startswith("channel=") or not stem.isdigit():
            raise ValueError(f"{path} is not a lake media file (channel=<name>/<message_id>.<ext>)")
        return folder.removeprefix("channel="), int(stem)

    def state_file(self, stream: str, channel: str) -> Path:
        return self.root / "state" / stream / f"channel={canonical_channel(channel)}.json"

    def lock_file(self, channel: str) -> Path:
        return self.root / "state" / "locks" / f"channel={canonical_channel(channel)}.lock"

    def channel_temp_files(self, channel: str) -> list[Path]:
        """Temporary files of unfinished writes by a channel's writer: its message,
        observation and snapshot partitions, its media folder and its high-water mark
        (not detections: the yolo stage writes those without the channel's lock). Only
        safe to remove while holding the channel's lock (tgmed_common.channel_lock)."""
        folder = f"channel={canonical_channel(channel)}"
        pattern = f".*{TEMP_MARKER}*"
        raw = self.root / "raw"
        found = [p for s in CHANNEL_STREAMS for p in (raw / s).glob(f"date=*/{folder}/{pattern}")]
        found += (raw / MEDIA / folder).glob(pattern)
        found += (self.root / "state" / MESSAGES).glob(f".{folder}.*{TEMP_MARKER}*")
        return sorted(p for p in found if is_temp(p))

    @property
    def quarantine_root(self) -> Path:
        return self.root / "quarantine"

    def relative(self, path: Path) -> str:
        """Lake-relative POSIX path, as stored in records."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"{relative!r} points outside the lake")
        return path

    # listing ---------------------------------------------------------------------------
    def _files(self, stream: str, pattern: str) -> list[Path]:
        base = self.root / "raw" / stream
        if not base.is_dir():
            return []
        return sorted(p for p in base.glob(pattern) if p.is_file() and not is_temp(p))

    def message_files(self) -> list[Path]:
        return self._files(MESSAGES, "date=*/channel=*/*.jsonl")

    def observation_files(self) -> list[Path]:
        return self._files(OBSERVATIONS, "date=*/channel=*/*.jsonl")

    def snapshot_files(self) -> list[Path]:
        return self._files(SNAPSHOTS, "date=*/channel=*/*.jsonl")

    def detection_files(self) -> list[Path]:
        return self._files(DETECTIONS, "date=*/channel=*/*.jsonl")

    def extraction_files(self) -> list[Path]:
        return self._files(EXTRACTIONS, "date=*/channel=*/*.jsonl")

    def media_files(self) -> list[Path]:
        return self._files(MEDIA, "channel=*/*")

    # record files ----------------------------------------------------------------------
    def write_records(
        self, path: Path, records: Iterable[BaseModel], batch: AtomicBatch | None = None
    ) -> int:
        """Write one immutable JSONL file atomically (or stage it in `batch`, published
        at the batch's commit); returns the number of records."""
        count = 0
        opener = batch.open if batch is not None else atomic_writer
        with opener(path, overwrite=False) as stream:
            for record in records:
                stream.write(record.model_dump_json().encode())
                stream.write(b"\n")
                count += 1
        return count

    # quarantine ------------------------------------------------------------------------
    def quarantine(
        self, path: Path, reason: str, *, stream: str, copy_limit: int | None = None
    ) -> Path:
        """Set a bad file aside with a note saying why, so everything beside it goes on.

        A lake file is moved; a file from outside the lake (an export) is copied, since
        it is the user's, and only if it is a regular file reached without a symlink,
        with one link (an untrusted export could point anywhere, or share a host file)
        and at most `copy_limit` bytes (0: never): otherwise only the note is written,
        saying why. Returns the quarantined path (the note is that path + `.reason.json`).
        """
        source = path.resolve()
        inside = source.is_relative_to(self.root.resolve())
        rel = Path(self.relative(source)) if inside else Path(path.name)
        if rel.parts[:2] == ("raw", stream):
            rel = rel.relative_to(Path("raw") / stream)
        target = self.quarantine_root / stream / new_run_id() / rel
        note = {
            "original_path": str(path),
            "reason": reason,
            "quarantined_at": datetime.now(UTC).isoformat(),
        }
        original = None
        if not inside and copy_limit == 0:
            note["not_copied"] = f"{path} was refused as unsafe or too large: not copied"
        elif not inside:
            try:
                original = _open_regular_nofollow(path)
            except OSError as error:
                note["not_copied"] = f"{path} is not a regular file of its folder: {error}"
            else:
                info = os.fstat(original.fileno())
                if info.st_nlink > 1 or (copy_limit is not None and info.st_size > copy_limit):
                    original.close()
                    original = None
                    note["not_copied"] = (
                        f"{path}: {info.st_nlink} links, {info.st_size:,} bytes"
                        f" (copied only with one link and at most {copy_limit or 0:,} bytes)"
                    )
        reason_file = target.with_name(target.name + ".reason.json")
        write_bytes_atomic(reason_file, json.dumps(note, ensure_ascii=False, indent=2).encode())
        if inside:
            source.replace(target)
        elif original is not None:
            with original, atomic_writer(target) as copy:
                shutil.copyfileobj(original, copy, 1 << 20)
        return target

    def quarantined(self, stream: str | None = None) -> list[Path]:
        base = self.quarantine_root / stream if stream else self.quarantine_root
        if not base.is_dir():
            return []
        return sorted(p for p in base.rglob("*.reason.json"))


def _open_regular_nofollow(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file and not a symlink (OSError
    otherwise, ELOOP for a symlink)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def parse_line(path: Path, number: int, raw: bytes, model: type[R]) -> R:
    """One JSONL line into a record; LakeRecordError(path, number) if it is not one."""
    if not raw.endswith(b"\n"):
        raise LakeRecordError(path, number, "truncated line (no newline at end)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            reason = f"not UTF-8 (byte {bad.start}: {bad.reason})"
        else:
            reason = _describe(error)
        raise LakeRecordError(path, number, reason) from None


def read_records(path: Path, model: type[R], data: bytes | None = None) -> Iterator[R]:
    """Yield validated records of a file (or of its bytes, already read); the first bad
    line raises LakeRecordError(path, line)."""
    with io.BytesIO(data) if data is not None else path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            yield parse_line(path, number, raw, model)


def read_messages(path: Path) -> Iterator[MessageRecord]:
    return read_records(path, MessageRecord)


class MessageText(NamedTuple):
    """What a reader of message texts alone needs of a record (`read_message_texts`)."""

    channel_username: str
    message_id: int
    scraped_at: datetime
    text: str


class _TextFields(BaseModel):
    """The four fields, typed strictly; the rest of the line is skipped unread."""

    model_config = ConfigDict(extra="ignore", strict=True)

    schema_version: int
    channel_username: str
    message_id: int
    scraped_at: str
    text: str = ""


def read_message_texts(path: Path) -> list[MessageText]:
    """The channel, id, scrape time and text of every message of a file: for the stages
    that read text alone (extraction), at about half of `read_messages`' cost. Each line's
    four fields are checked in the canonical form the writers write (a lower-case
    channel, a UTC time as `...Z` or `...+00:00`); a file with a line that is not so (a
    bad record, or a form only the full reader normalises) is read with `read_messages`,
    which normalises it or raises LakeRecordError naming the line. The record's other
    fields are the loader's to validate: it sets aside a file with a bad one, and the
    extraction rows of messages never loaded reach no mart."""
    versions = readable_versions(MessageRecord)
    times: dict[str, datetime] = {}  # a file's messages share a few scrape times
    texts = []
    try:
        for raw in path.read_bytes().splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                raise ValueError("truncated")
            fields = _TextFields.model_validate_json(raw)
            if not (
                fields.schema_version in versions
                and fields.message_id > 0
                and CHANNEL_PATTERN.fullmatch(fields.channel_username)
            ):
                raise ValueError("not canonical")
            at = times.get(fields.scraped_at)
            if at is None:
                at = times[fields.scraped_at] = _canonical_utc(fields.scraped_at)
            texts.append(MessageText(fields.channel_username, fields.message_id, at, fields.text))
    except ValueError:  # ValidationError is one
        return [
            MessageText(m.channel_username, m.message_id, m.scraped_at, m.text)
            for m in read_messages(path)
        ]
    return texts


def _canonical_utc(text: str) -> datetime:
    """`text` as a UTC time if it is one in its canonical form, else ValueError."""
    at = datetime.fromisoformat(text)
    if at.utcoffset() != _NO_OFFSET:
        raise ValueError("not UTC")
    at = at.replace(tzinfo=UTC)
    if at.isoformat() != (text[:-1] + "+00:00" if text.endswith("Z") else text):
        raise ValueError("not canonical")
    return at


def read_detections(path: Path) -> Iterator[DetectionRecord]:
    return read_records(path, DetectionRecord)


def read_extractions(path: Path) -> Iterator[ExtractionRecord]:
    return read_records(path, ExtractionRecord)


def read_observations(path: Path) -> Iterator[MessageObservationRecord]:
    return read_records(path, MessageObservationRecord)


def read_snapshots(path: Path) -> Iterator[ChannelSnapshotRecord]:
    return read_records(path, ChannelSnapshotRecord)
