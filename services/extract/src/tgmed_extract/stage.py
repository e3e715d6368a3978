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
knowledge base once: ~1.5 s, so small backlogs stay in this process). A text is
extracted once per version: within a process, a text already extracted in this run (a
re-scrape, a repost, a seller's standard post) reuses its serialised findings, and a
text an earlier run extracted takes its findings from the lake's findings store
(tgmed_extract.findings_store: what makes a scrape's refresh window cost a lookup per
post, not an extraction). Processes of one run share their work through the store too:
a file is resolved in chunks, each new text claimed by the first process to meet it,
so that each text is extracted by one process only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tgmed_common.atomic import atomic_writer
from tgmed_common.lake import Lake, LakeRecordError, read_message_texts
from tgmed_common.progress import Progress
from tgmed_extract.extract import EXTRACTOR_VERSION, Extraction, extract
from tgmed_extract.findings_store import (
    Counts,
    FindingsStore,
    remove_other_versions,
    store_path,
    text_key,
)
from tgmed_extract.knowledge import knowledge_version

log = logging.getLogger(__name__)

BYTES_PER_WORKER = 8 << 20  # below this much message data per process, one process
_SEEN_LIMIT = 200_000  # distinct texts whose findings a process keeps (~100 MB at most)
_COUNTED = ("with_products", "mentions", "prices", "services", "candidates")  # Counts' order
_CHUNK = 1_000  # messages whose new texts are claimed, extracted and stored together
_WAIT_SECONDS = 60  # for texts another process claimed (it stores them within a chunk)
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
    reused: int = 0  # a text met before in this run
    remembered: int = 0  # a text an earlier run extracted (the findings store)
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


# one encoder for every record: json.dumps with options builds a new one per call
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def findings_json(result: Extraction) -> str:
    """The four lists of a result as the record's JSON fields (without braces)."""
    body = {
        name: [{key: getattr(item, key) for key in names} for item in getattr(result, name)]
        for name, names in _FIELDS.items()
    }
    return _ENCODER.encode(body)[1:-1]


_seen: dict[str, tuple[str, Counts]] = {}
_stores: dict[Path, FindingsStore] = {}


def _store(path: Path | None) -> FindingsStore | None:
    """This process's connection to the findings store at `path` (None: no store)."""
    if path is None:
        return None
    if path not in _stores:
        _stores[path] = FindingsStore(path)
    return _stores[path]


def close_stores() -> None:
    for store in _stores.values():
        store.close()
    _stores.clear()


def _counts(result: Extraction) -> Counts:
    return (
        1 if result.mentions else 0,
        len(result.mentions),
        len(result.prices),
        len(result.services),
        len(result.candidates),
    )


def _keep(text: str, found: tuple[str, Counts]) -> tuple[str, Counts]:
    """Remember `found` for `text` in this process (bounded)."""
    if len(_seen) >= _SEEN_LIMIT:
        _seen.clear()
    _seen[text] = found
    return found


class _FileFindings:
    """The findings of one message file's texts, each text resolved once: from this
    process's memory (`reused`), from the store (`remembered` when an earlier run
    extracted it, `reused` when another process of this run did), or extracted here
    (`extracted`, after claiming it in the store, then stored)."""

    def __init__(self, store: FindingsStore | None) -> None:
        self.store = store
        self.found: dict[str, tuple[str, Counts]] = {}
        self.origin: dict[str, str] = {}  # text -> where it came from (its first message)
        self.waiting: dict[bytes, str] = {}  # claimed by another process, not stored yet

    def _take(self, text: str, found: tuple[str, Counts], origin: str) -> None:
        self.found[text] = found
        self.origin[text] = origin

    def _from_store(self, unknown: dict[bytes, str]) -> None:
        assert self.store is not None
        for key, (findings, counts, this_run) in self.store.get_many(list(unknown)).items():
            text = unknown.pop(key)
            origin = "reused" if this_run else "remembered"
            self._take(text, _keep(text, (findings, counts)), origin)

    def _extract(self, unknown: dict[bytes, str]) -> None:
        new = []
        for key, text in unknown.items():
            result = extract(text)
            found = _keep(text, (findings_json(result), _counts(result)))
            self._take(text, found, "extracted")
            new.append((key, *found))
        if self.store is not None:
            self.store.put(new)

    def add(self, texts: list[str]) -> None:
        """Resolve the texts of one chunk; those another process is extracting now wait
        for `finish`."""
        unknown = {}
        for text in dict.fromkeys(texts):
            if text in self.found:
                continue
            hit = _seen.get(text)
            if hit is not None:
                self._take(text, hit, "reused")
            else:
                unknown[text_key(text)] = text
        if unknown and self.store is not None:
            self._from_store(unknown)
            if unknown:
                mine = self.store.claim(list(unknown))
                for key in [k for k in unknown if k not in mine]:
                    self.waiting[key] = unknown.pop(key)
        self._extract(unknown)

    def finish(self) -> None:
        """Take what other processes were extracting from the store once it is there;
        what is still missing after `_WAIT_SECONDS` (a process died, a run beside this
        one cleared the claims) is extracted here."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while self.waiting and self.store is not None and self.store.broken is None:
            self._from_store(self.waiting)
            if not self.waiting or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if self.waiting:
            log.warning(
                "%d texts claimed by another process were not in the findings store "
                "(waited up to %d s): extracting them here",
                len(self.waiting),
                _WAIT_SECONDS,
            )
            self._extract(self.waiting)
            self.waiting = {}


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


def extract_file(
    work: Work, tag: str, stamp: dict[str, str], store_at: Path | None = None
) -> dict[str, Any]:
    """One message file into its extraction file; the counts (or `problem`). With
    `store_at`, texts earlier runs (or other processes of this one) extracted are taken
    from that findings store, and the texts extracted here are added to it."""
    counts = dict.fromkeys(
        ("messages", "extracted", "reused", "remembered", "with_products", "mentions", "prices",
         "services", "candidates"), 0)  # fmt: skip
    try:
        messages = read_message_texts(work.source)
    except (LakeRecordError, OSError) as error:
        return {"problem": f"{error}", "source": str(work.source)}
    texts = _FileFindings(_store(store_at))
    for start in range(0, len(messages), _CHUNK):
        texts.add([m.text for m in messages[start : start + _CHUNK]])
    texts.finish()
    counts["messages"] = len(messages)
    for text, times in Counter(m.text for m in messages).items():
        counts[texts.origin[text]] += 1  # its first message; the others reuse it
        counts["reused"] += times - 1
        for name, value in zip(_COUNTED, texts.found[text][1], strict=True):
            counts[name] += value * times
    head = record_head(tag, stamp)
    lines = [
        record_line(head, m.channel_username, m.message_id, m.scraped_at, texts.found[m.text][0])
        for m in messages
    ]
    with atomic_writer(work.target, overwrite=False) as stream:
        stream.write("".join(lines).encode())
    return counts


def run_extraction(lake: Lake, workers: int = 0) -> ExtractSummary:
    """Extract every message file not yet extracted under the current version.
    `workers`: processes (0: one per core, fewer for a small backlog)."""
    started = time.monotonic()
    tag = version_tag()
    summary = ExtractSummary(version=tag)
    todo, summary.already_done = plan(lake, tag)
    store_at = store_path(lake.root, tag)
    for old in remove_other_versions(lake.root, tag):
        log.info("removed the findings store of another version: %s", lake.relative(old))
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

    try:
        if todo:
            _store(store_at).clear_claims()  # type: ignore[union-attr]
        if summary.workers == 1:
            for work in todo:
                finished(work, extract_file(work, tag, stamp, store_at))
        else:
            # spawned, not forked: the parent may hold Dagster Pipes' threads and locks
            with ProcessPoolExecutor(
                # no initializer: a process builds the knowledge base (~1.5 s) at its first
                # text to extract, never when the store knows all of its texts
                summary.workers,
                mp_context=get_context("spawn"),
            ) as pool:
                # biggest first, so the last file to finish is a small one
                ordered = sorted(todo, key=lambda w: -w.size)
                futures = {pool.submit(extract_file, w, tag, stamp, store_at): w for w in ordered}
                for future in as_completed(futures):
                    finished(futures[future], future.result())
    finally:
        close_stores()
    progress.done()
    summary.seconds = time.monotonic() - started
    return summary
