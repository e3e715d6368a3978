"""The extract stage: every lake message file not yet read by this extractor and
knowledge base gets one extraction file beside it (`Lake.extraction_file`), one record
per message.

Incremental and versioned by file: the extraction file of a message file is named after
it and after the version tag (extractor version + knowledge base hash), so its existence
says the file is done. A changed catalog or extractor is a new tag: every message file is
read again, and the loader loads only the new extraction files (the lake's messages and
the raw tables are not touched). Each extraction file is written atomically: a crash
loses at most the files in flight, never half a file, and a re-run adds nothing.

Work is per file, on one process per core for big backlogs (a process builds the
knowledge base once: ~1.5 s, so small backlogs stay in this process). Within a process,
a text already extracted in this run (a re-scrape, a repost, a seller's standard post)
is not extracted again: its serialised findings are reused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tgmed_common.atomic import atomic_writer
from tgmed_common.lake import Lake, LakeRecordError, read_messages
from tgmed_common.progress import Progress
from tgmed_extract.extract import EXTRACTOR_VERSION, Extraction, extract
from tgmed_extract.knowledge import knowledge, knowledge_version

log = logging.getLogger(__name__)

BYTES_PER_WORKER = 8 << 20  # below this much message data per process, one process
_SEEN_LIMIT = 200_000  # distinct texts whose findings a process keeps (~100 MB at most)
_FIELDS = {
    "mentions": ("product", "category", "brand", "parent", "start", "end", "as_written",
                 "matched_by"),
    "prices": ("product", "category", "amount", "high", "currency", "old_price", "strength",
               "size", "pack", "pack_count", "unit_price", "start", "end", "as_written"),
    "services": ("service", "product", "amount", "high", "currency", "start", "end",
                 "as_written"),
    "candidates": ("name", "start", "end", "context"),
}  # fmt: skip


def version_tag() -> str:
    """The extractor version and the knowledge base's hash: `1.0.0-3f9a1c2b`."""
    return f"{EXTRACTOR_VERSION}-{knowledge_version()[:8]}"


@dataclass
class ExtractSummary:
    version: str = ""
    files: int = 0  # extraction files written in this run
    already_done: int = 0  # message files extracted before under this version
    messages: int = 0
    extracted: int = 0  # texts run through the extractor (the rest reused a result)
    reused: int = 0
    with_products: int = 0
    mentions: int = 0
    prices: int = 0
    services: int = 0
    candidates: int = 0
    skipped: int = 0  # message files that could not be read (the loader sets them aside)
    workers: int = 1
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)  # file -> why (set aside)

    def add(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        body = dict(self.__dict__)
        body["failed"] = dict(list(self.failed.items())[:20])
        body["seconds"] = round(self.seconds, 2)
        body["messages_per_second"] = round(self.messages / self.seconds) if self.seconds else 0
        return {"stage": "extract", **body}


@dataclass(frozen=True)
class Work:
    source: Path
    target: Path
    size: int


def plan(lake: Lake, tag: str) -> tuple[list[Work], int]:
    """(message files with no extraction file for `tag`, how many have one)."""
    todo, done = [], 0
    for source in lake.message_files():
        day = date.fromisoformat(source.parent.parent.name.removeprefix("date="))
        channel = source.parent.name.removeprefix("channel=")
        target = lake.extraction_file(day, channel, f"{source.stem}-{tag}")
        if target.exists():
            done += 1
        else:
            todo.append(Work(source, target, source.stat().st_size))
    return todo, done


def findings_json(result: Extraction) -> str:
    """The four lists of a result as the record's JSON fields (without braces)."""
    parts = []
    for name, names in _FIELDS.items():
        items = [{key: getattr(item, key) for key in names} for item in getattr(result, name)]
        parts.append(f'"{name}":{json.dumps(items, ensure_ascii=False, separators=(",", ":"))}')
    return ",".join(parts)


_seen: dict[str, tuple[str, tuple[int, int, int, int, int]]] = {}


def _findings(text: str) -> tuple[str, tuple[int, int, int, int, int], bool]:
    """(JSON of the findings, their counts, whether they were reused from this run)."""
    hit = _seen.get(text)
    if hit is not None:
        return hit[0], hit[1], True
    result = extract(text)
    counts = (
        1 if result.mentions else 0,
        len(result.mentions),
        len(result.prices),
        len(result.services),
        len(result.candidates),
    )
    if len(_seen) >= _SEEN_LIMIT:
        _seen.clear()
    _seen[text] = found = (findings_json(result), counts)
    return found[0], counts, False


def record_head(tag: str, stamp: dict[str, str]) -> str:
    """The part of every record of a run that does not depend on the message."""
    return (
        f'{{"schema_version":1,"extractor_version":"{tag}","extractor":"{stamp["extractor"]}",'
        f'"knowledge":"{stamp["knowledge"]}","extracted_at":"{stamp["extracted_at"]}",'
    )


def record_line(
    head: str, channel: str, message_id: int, scraped_at: datetime, findings: str
) -> str:
    """One ExtractionRecord as a JSONL line (channel names are [a-z0-9_]: no escaping)."""
    return (
        f'{head}"channel_username":"{channel}","message_id":{message_id},'
        f'"scraped_at":"{scraped_at.isoformat()}",{findings}}}\n'
    )


def extraction_record(channel: str, message_id: int, scraped_at: datetime, text: str) -> dict:
    """The record the stage writes for one message, now (for tools and tests)."""
    stamp = {
        "extractor": EXTRACTOR_VERSION,
        "knowledge": knowledge_version(),
        "extracted_at": datetime.now(UTC).isoformat(),
    }
    head = record_head(version_tag(), stamp)
    return json.loads(
        record_line(head, channel, message_id, scraped_at, findings_json(extract(text)))
    )


def extract_file(work: Work, tag: str, stamp: dict[str, str]) -> dict[str, Any]:
    """One message file into its extraction file; the counts (or `problem`)."""
    counts = dict.fromkeys(
        ("messages", "extracted", "reused", "with_products", "mentions", "prices", "services",
         "candidates"), 0)  # fmt: skip
    lines = []
    head = record_head(tag, stamp)
    try:
        for message in read_messages(work.source):
            findings, found, reused = _findings(message.text)
            counts["messages"] += 1
            counts["reused" if reused else "extracted"] += 1
            for name, value in zip(
                ("with_products", "mentions", "prices", "services", "candidates"),
                found,
                strict=True,
            ):
                counts[name] += value
            lines.append(
                record_line(
                    head, message.channel_username, message.message_id, message.scraped_at, findings
                )
            )
    except (LakeRecordError, OSError) as error:
        return {"problem": f"{error}", "source": str(work.source)}
    with atomic_writer(work.target, overwrite=False) as stream:
        stream.write("".join(lines).encode())
    return counts


def _worker_start() -> None:
    knowledge()  # built once per process, before its first file


def run_extraction(lake: Lake, workers: int = 0) -> ExtractSummary:
    """Extract every message file not yet extracted under the current version.
    `workers`: processes (0: one per core, fewer for a small backlog)."""
    started = time.monotonic()
    tag = version_tag()
    summary = ExtractSummary(version=tag)
    todo, summary.already_done = plan(lake, tag)
    total_bytes = sum(w.size for w in todo)
    cores = workers or os.cpu_count() or 1
    summary.workers = max(1, min(cores, len(todo), math.ceil(total_bytes / BYTES_PER_WORKER)))
    log.info(
        "extractor %s: %d message files to read (%.1f MB), %d already extracted; %d process%s",
        tag,
        len(todo),
        total_bytes / 1e6,
        summary.already_done,
        summary.workers,
        "" if summary.workers == 1 else "es",
    )
    stamp = {
        "extractor": EXTRACTOR_VERSION,
        "knowledge": knowledge_version(),
        "extracted_at": datetime.now(UTC).isoformat(),
    }
    progress = Progress("extract", unit="message files", total=len(todo))

    def finished(work: Work, result: dict[str, Any]) -> None:
        problem = result.pop("problem", None)
        if problem:
            summary.skipped += 1
            summary.failed[lake.relative(work.source)] = problem
            log.error(
                "cannot read %s: %s (not extracted; `tgmed-loader load messages` sets it aside "
                "in quarantine/: fix or remove it, then run again)",
                lake.relative(work.source),
                problem,
            )
        else:
            summary.files += 1
            summary.add(result)
        progress.advance()

    if summary.workers == 1:
        for work in todo:
            finished(work, extract_file(work, tag, stamp))
    else:
        # spawned, not forked: the parent may hold Dagster Pipes' threads and locks
        with ProcessPoolExecutor(
            summary.workers, mp_context=get_context("spawn"), initializer=_worker_start
        ) as pool:
            # biggest first, so the last file to finish is a small one
            ordered = sorted(todo, key=lambda w: -w.size)
            futures = {pool.submit(extract_file, w, tag, stamp): w for w in ordered}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    progress.done()
    summary.seconds = time.monotonic() - started
    return summary
