"""Telegram Desktop "Export chat history" (JSON) into the lake, as the same message
records the scraper writes.

An export is a folder with `result.json` and its media beside it (`photos/...`). Text is
a string or an array of strings and entity objects; service messages are skipped; an
export has no view, forward or reply counts (null); reactions are read when the export
has them (Telegram Desktop writes them since 2023), else null. Dates come from `date_unixtime`
(UTC); an export without it is read as UTC.

An export is checked completely before anything is written: a broken one writes
nothing, is copied to quarantine/ with the reason, and the others still import.

An export is untrusted input (it may come from anyone): a file it names is read only if
it lies inside the export folder, reached without a symlink, and is a regular file
within the size bound (export_files.py). A message whose photo breaks that rule is kept
without its photo and named in the summary (`media_refused`); the rest imports, and the
exit code says something was set aside.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from tgmed_common.atomic import AtomicBatch
from tgmed_common.channel_lock import ChannelBusy, hold_channel
from tgmed_common.lake import MESSAGES, Lake, new_run_id
from tgmed_common.progress import Progress
from tgmed_common.records import (
    CHANNEL_PATTERN,
    MediaType,
    MessageRecord,
    ReactionCount,
    canonical_channel,
)
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.export_files import (
    DEFAULT_MAX_EXPORT_BYTES,
    DEFAULT_MAX_PHOTO_BYTES,
    UnsafeExportPath,
    open_export_file,
)
from tgmed_scraper.export_json import ExportJSONError, read_export
from tgmed_scraper.writer import MessageBatchWriter

log = logging.getLogger(__name__)

EXPORT_FILE = "result.json"
NOT_INCLUDED = "(File not included"
MAX_ERRORS_LISTED = 10
MAX_REFUSED_LISTED = 100

_FILE_MEDIA_TYPES: dict[str, MediaType] = {
    "video_file": "video",
    "video_message": "video",
    "animation": "animation",
    "voice_message": "voice",
    "audio_file": "audio",
    "sticker": "sticker",
}


class ExportError(ValueError):
    """An export that cannot be imported; names the file and the message index.
    `copy`: whether quarantine may keep a copy of the file (not for a file refused as
    unsafe: a hard link to a host file, one over the size bound)."""

    def __init__(self, path: Path, problems: list[str], *, copy: bool = True) -> None:
        self.path = path
        self.problems = problems
        self.copy = copy
        shown = problems[:MAX_ERRORS_LISTED]
        more = len(problems) - len(shown)
        text = f"{path}: " + "; ".join(shown) + (f"; and {more} more" if more else "")
        super().__init__(
            text + ". Nothing from this export was written; fix or re-export it and run "
            "import-export again."
        )


@dataclass
class ParsedExport:
    path: Path
    channel: str
    title: str | None
    records: list[MessageRecord]
    photos: dict[int, str]  # message id -> photo path inside the export folder (checked)
    service_messages: int = 0
    already_imported: int = 0
    media_refused: list[str] = field(default_factory=list)  # "message N: photo 'p': why"


@dataclass
class ImportSummary:
    run_id: str
    exports: int = 0
    messages: int = 0
    already_imported: int = 0
    service_messages: int = 0
    photos: int = 0
    photos_skipped: int = 0
    files: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    # messages kept without their photo: the export named a file outside its folder, a
    # symlink, a device or a file over the size bound (the first ones listed by name)
    media_refused: int = 0
    media_refused_messages: list[str] = field(default_factory=list)

    def refuse(self, export_file: Path, what: str) -> None:
        self.media_refused += 1
        if len(self.media_refused_messages) < MAX_REFUSED_LISTED:
            self.media_refused_messages.append(f"{export_file}: {what}")
        log.warning("%s: %s; the message is kept without it", export_file, what)

    def as_dict(self) -> dict[str, Any]:
        body = {"stage": "import-export", **self.__dict__}
        more = self.media_refused - len(self.media_refused_messages)
        if more > 0:
            body["media_refused_messages"] = [*self.media_refused_messages, f"and {more} more"]
        return body


def find_exports(path: Path) -> list[Path]:
    """`result.json` itself, a folder holding one, or a folder of such folders."""
    if path.is_file():
        return [path]
    if (path / EXPORT_FILE).is_file():
        return [path / EXPORT_FILE]
    found = (
        sorted(p / EXPORT_FILE for p in path.iterdir() if (p / EXPORT_FILE).is_file())
        if (path.is_dir())
        else []
    )
    if not found:
        raise FileNotFoundError(
            f"{path}: no Telegram Desktop export here (expected {EXPORT_FILE}, a folder "
            f"holding it, or a folder of such folders)"
        )
    return found


def channel_for(export_file: Path, title: str | None, override: str | None) -> str:
    """--channel if given; else the export folder's name when it is a username (the
    sample names folders so); else the channel title made into one."""
    if override:
        return canonical_channel(override)
    folder = export_file.parent.name.lower()
    if CHANNEL_PATTERN.fullmatch(folder) and not folder.startswith("chatexport"):
        return folder
    slug = re.sub(r"[^a-z0-9]+", "_", (title or "").lower()).strip("_")[:64]
    if not slug:
        raise ValueError(f"{export_file}: cannot tell the channel's username; pass --channel NAME")
    return slug


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", "")) for part in value
        )
    raise TypeError(f"text is a {type(value).__name__}, expected a string or an array")


def _reactions(message: dict[str, Any]) -> list[ReactionCount] | None:
    """`reactions` as Telegram Desktop writes them: {"type": "emoji", "count": 3,
    "emoji": "👍"}, {"type": "custom_emoji", "count": 1, "document_id": ...},
    {"type": "paid", "count": 5}; null when the export has none (older exports)."""
    items = message.get("reactions")
    if items is None:
        return None
    if not isinstance(items, list):
        raise TypeError(f"reactions is a {type(items).__name__}, expected an array")
    counts = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "emoji":
            counts.append(ReactionCount(kind="emoji", reaction=item["emoji"], count=item["count"]))
        elif kind == "custom_emoji":
            counts.append(
                ReactionCount(
                    kind="custom_emoji",
                    reaction=f"custom_emoji:{item['document_id']}",
                    count=item["count"],
                )
            )
        elif kind == "paid":
            counts.append(ReactionCount(kind="paid", reaction="paid", count=item["count"]))
        elif kind is None:
            raise TypeError(f"a reaction without a type: {str(item)[:80]}")
    return counts


def _timestamp(message: dict[str, Any], unix_key: str, iso_key: str) -> datetime | None:
    if message.get(unix_key) is not None:
        return datetime.fromtimestamp(int(message[unix_key]), UTC)
    if message.get(iso_key) is not None:
        parsed = datetime.fromisoformat(message[iso_key])
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def parse_export(
    export_file: Path,
    *,
    channel: str | None = None,
    marks: HighWaterMarks | None = None,
    scraped_at: datetime | None = None,
    max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES,
    max_export_bytes: int = DEFAULT_MAX_EXPORT_BYTES,
) -> ParsedExport:
    """Read and check a whole export. Messages at or below the channel's high-water mark
    (from `marks`) count as already imported and are skipped. Raises ExportError listing
    every problem. A photo path that breaks the export-folder rule is not an error: the
    message is kept without it and listed in `media_refused`.

    `result.json` is read under the same rules as a photo (a regular file of the export
    folder, one link, at most `max_export_bytes`) and decoded one message at a time
    (export_json.py): memory holds the records, not the whole document as dicts."""
    scraped_at = scraped_at or datetime.now(UTC)
    header: dict[str, Any] = {}
    pending: list[Any] = []  # messages met before the chat's name (not Telegram's order)
    reader: _MessageReader | None = None
    messages = False
    try:
        with open_export_file(export_file.parent, export_file.name, max_export_bytes) as stream:
            for key, value in read_export(stream):
                if key == "message":
                    if reader is None and "name" in header:
                        reader = _MessageReader(
                            export_file, header, channel, marks, scraped_at, max_photo_bytes
                        )
                        for earlier in pending:
                            reader.add(earlier)
                        pending = []
                    if reader is None:
                        pending.append(value)
                    else:
                        reader.add(value)
                elif key == "messages_end":
                    messages = True
                else:
                    header[key] = value
    except UnsafeExportPath as error:
        raise ExportError(export_file, [f"refused: {error}"], copy=False) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(export_file, [f"cannot read the file: {error}"]) from None
    except ExportJSONError as error:
        raise ExportError(export_file, [str(error)]) from None
    if not messages:
        raise ExportError(
            export_file, ["not a single-chat export: expected an object with a 'messages' list"]
        )
    if reader is None:
        reader = _MessageReader(export_file, header, channel, marks, scraped_at, max_photo_bytes)
        for earlier in pending:
            reader.add(earlier)
    if reader.problems:
        raise ExportError(export_file, reader.problems)
    return reader.parsed


class _MessageReader:
    """The export's messages into records, one at a time, problems collected."""

    def __init__(
        self,
        export_file: Path,
        header: dict[str, Any],
        channel: str | None,
        marks: HighWaterMarks | None,
        scraped_at: datetime,
        max_photo_bytes: int,
    ) -> None:
        title = header.get("name")
        try:
            name = channel_for(export_file, title, channel)
        except ValueError as error:
            raise ExportError(export_file, [str(error)]) from None
        self.after_id = marks.get(name) if marks is not None else 0
        self.channel_id = header.get("id") if isinstance(header.get("id"), int) else None
        self.folder = export_file.parent
        self.parsed = ParsedExport(export_file, name, title, [], {})
        self.problems: list[str] = []
        self.scraped_at = scraped_at
        self.max_photo_bytes = max_photo_bytes
        self.index = 0

    def add(self, message: Any) -> None:
        index, self.index = self.index, self.index + 1
        parsed, problems = self.parsed, self.problems
        where = f"message #{index}"
        if not isinstance(message, dict):
            problems.append(f"{where}: not an object")
            return
        if "id" in message:
            where += f" (id {message['id']})"
        kind = message.get("type")
        if kind != "message":
            if kind is None:
                problems.append(f"{where}: no 'type'")
            else:
                parsed.service_messages += 1
            return
        try:
            message_id = message["id"]
            if not isinstance(message_id, int):
                raise TypeError(f"id {message_id!r} is not an integer")
            if message_id <= self.after_id:
                parsed.already_imported += 1
                return
            date = _timestamp(message, "date_unixtime", "date")
            if date is None:
                raise KeyError("date")
            media_type: MediaType | None = None
            photo = message.get("photo")
            if photo is not None:
                media_type = "photo"
                if not str(photo).startswith(NOT_INCLUDED):
                    try:
                        with open_export_file(self.folder, str(photo), self.max_photo_bytes):
                            parsed.photos[message_id] = str(photo)
                    except UnsafeExportPath as error:
                        refused = f"message {message_id}: photo {photo!r}: {error}"
                        parsed.media_refused.append(refused)
                    except FileNotFoundError:
                        raise FileNotFoundError(
                            f"photo file {photo!r} is missing from the export"
                        ) from None
            elif message.get("file") is not None or message.get("media_type"):
                media_type = _FILE_MEDIA_TYPES.get(message.get("media_type", ""), "document")
            record = MessageRecord(
                source="export",
                channel_username=parsed.channel,
                channel_title=parsed.title,
                channel_id=self.channel_id,
                message_id=message_id,
                date=date,
                edit_date=_timestamp(message, "edited_unixtime", "edited"),
                text=_text(message.get("text", "")),
                media_type=media_type,
                forwarded_from=message.get("forwarded_from"),
                reply_to_message_id=message.get("reply_to_message_id"),
                reactions=_reactions(message),
                scraped_at=self.scraped_at,
            )
        except KeyError as error:
            problems.append(f"{where}: missing {error.args[0]!r}")
            return
        except ValidationError as error:
            fields = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            problems.append(f"{where}: {fields}")
            return
        except (TypeError, ValueError, OSError) as error:
            problems.append(f"{where}: {error}")
            return
        parsed.records.append(record)


def import_exports(
    lake: Lake,
    path: Path,
    *,
    channel: str | None = None,
    max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES,
    max_export_bytes: int = DEFAULT_MAX_EXPORT_BYTES,
) -> ImportSummary:
    """Import one export or a folder of exports. Already imported messages (at or below
    the channel's high-water mark) are skipped, so a re-run writes nothing new. Photos
    over `max_photo_bytes`, outside the export folder, behind a symlink or not regular
    files are not copied (see export_files.py)."""
    exports = find_exports(path)
    if channel and len(exports) > 1:
        raise ValueError(f"{path}: --channel names one channel but {len(exports)} exports found")
    summary = ImportSummary(run_id=new_run_id())
    marks = HighWaterMarks(lake, MESSAGES)
    for export_file in exports:
        try:
            parsed = parse_export(
                export_file,
                channel=channel,
                marks=marks,
                max_photo_bytes=max_photo_bytes,
                max_export_bytes=max_export_bytes,
            )
        except ExportError as error:
            log.error("%s", error)
            summary.failed[str(export_file)] = str(error)
            note = lake.quarantine(
                export_file,
                str(error),
                stream="exports",
                copy_limit=max_export_bytes if error.copy else 0,
            )
            if note.exists():
                log.error("copied %s to %s", export_file, note)
            else:  # a symlink, a hard link, too large: only the note says why
                log.error(
                    "set %s aside without copying it (see why in %s.reason.json)",
                    export_file,
                    note,
                )
            continue
        for refused in parsed.media_refused:
            summary.refuse(export_file, refused)
        try:
            _write(lake, marks, parsed, summary, max_photo_bytes)
        except ChannelBusy as error:  # a scrape of the channel is running: try again later
            log.error("%s", error)
            summary.failed[str(export_file)] = str(error)
    return summary


def _copy_photo(
    folder: Path, relative: str, target: Path, batch: AtomicBatch, max_bytes: int
) -> None:
    """Stage the export's photo in the batch, read through the same checks as when the
    export was parsed (the folder may have changed since)."""
    with open_export_file(folder, relative, max_bytes) as source, batch.open(target) as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _write(
    lake: Lake,
    marks: HighWaterMarks,
    parsed: ParsedExport,
    summary: ImportSummary,
    max_photo_bytes: int,
) -> None:
    # the channel's lock: no scrape writes it meanwhile, and what a killed run left is swept
    with hold_channel(lake, parsed.channel):
        _write_held(lake, marks, parsed, summary, max_photo_bytes)


def _write_held(
    lake: Lake,
    marks: HighWaterMarks,
    parsed: ParsedExport,
    summary: ImportSummary,
    max_photo_bytes: int,
) -> None:
    progress = Progress(f"import {parsed.channel}", unit="messages", total=len(parsed.records))
    writer = MessageBatchWriter(lake, marks, parsed.channel, summary.run_id)
    folder = parsed.path.parent
    try:
        for record in sorted(parsed.records, key=lambda r: r.message_id):
            photo = parsed.photos.get(record.message_id)
            if photo is not None:
                suffix = PurePosixPath(photo.replace("\\", "/")).suffix
                target = lake.media_file(parsed.channel, record.message_id, suffix)
                try:
                    if target.exists():
                        summary.photos_skipped += 1
                    else:
                        _copy_photo(folder, photo, target, writer.batch, max_photo_bytes)
                        summary.photos += 1
                except (UnsafeExportPath, FileNotFoundError) as error:
                    what = f"message {record.message_id}: photo {photo!r}: {error}"
                    summary.refuse(parsed.path, what)
                else:
                    record = record.model_copy(update={"media_path": lake.relative(target)})
            writer.add(record)
            progress.advance()
    except BaseException:
        # a photo that could not be copied (a full disk): the photos staged so far go
        # too, at once, instead of filling the disk until the channel's next import
        writer.batch.abort()
        raise
    # one flush: an export is written whole (one file per day) and the mark moves once
    writer.flush()
    progress.done()
    summary.exports += 1
    summary.messages += writer.written
    summary.files += writer.files
    summary.already_imported += parsed.already_imported
    summary.service_messages += parsed.service_messages
    log.info(
        "export %s -> channel %s: %d new messages, %d already imported",
        parsed.path,
        parsed.channel,
        writer.written,
        parsed.already_imported,
    )
