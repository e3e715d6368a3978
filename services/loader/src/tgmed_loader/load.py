"""Load lake files of one stream into its raw table.

Per file, one transaction: the rows and the file's audit row commit together, so a
crash (even kill -9) leaves each file either loaded and audited or not at all, and the
re-run loads exactly what is missing.

- Already loaded (audit has the path with the same size; lake files are immutable) or
  the same bytes under another path (same checksum): skipped, not read again.
- Common case, only new keys: COPY straight into the table.
- Some keys present (a re-scrape, views grew) or repeated in the file: that COPY fails
  on the key, rolls back to a savepoint, and the file goes through a temporary table and
  one `INSERT ... ON CONFLICT DO UPDATE` that keeps the newest version of each row.
- A malformed file (bad JSON, wrong schema version or types, missing key, not UTF-8,
  empty, or refused by PostgreSQL) moves to quarantine/ with a note naming the line and
  the reason; every other file still loads.

Files load in parallel (LOADER_WORKERS processes, one connection each): validation is
CPU work in Python, so two processes keep both cores busy beside the server.
"""

from __future__ import annotations

import hashlib
import io
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors, sql

from tgmed_common.lake import Lake, LakeRecordError, parse_line
from tgmed_common.progress import Progress
from tgmed_loader import faults
from tgmed_loader.schema import ensure_raw_schema
from tgmed_loader.streams import STREAMS, Stream

log = logging.getLogger(__name__)
_RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)


class MalformedFile(ValueError):
    """A file that cannot be loaded as it is; the message names the line and why."""


@dataclass
class FileResult:
    path: str
    status: str  # loaded | skipped | quarantined
    rows: int = 0
    mode: str = ""  # copy | upsert | size | checksum
    reason: str = ""


@dataclass
class LoadSummary:
    stream: str
    files: int = 0
    loaded: int = 0
    skipped: int = 0
    quarantined: int = 0
    rows: int = 0
    upserted_files: int = 0
    seconds: float = 0.0
    quarantine_reasons: dict[str, str] = field(default_factory=dict)

    def add(self, result: FileResult) -> None:
        self.files += 1
        if result.status == "loaded":
            self.loaded += 1
            self.rows += result.rows
            self.upserted_files += result.mode == "upsert"
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.quarantined += 1
            self.quarantine_reasons[result.path] = result.reason

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["stage"] = "load"
        body["rows_per_second"] = round(self.rows / self.seconds) if self.seconds else 0
        body["seconds"] = round(self.seconds, 3)
        return body


def _escape(raw: bytes) -> bytes:
    """A JSON line as one COPY text field (backslash is COPY's escape character)."""
    raw = raw.rstrip(b"\n").replace(b"\\", b"\\\\")
    if b"\t" in raw or b"\r" in raw:
        raw = raw.replace(b"\t", b"\\t").replace(b"\r", b"\\r")
    return raw


def copy_buffer(path: Path, data: bytes, stream: Stream, source_file: str) -> tuple[bytes, int]:
    """Validate every line of a file and build its COPY text; raises MalformedFile."""
    if not data.strip():
        raise MalformedFile(f"{path}: empty file, no records")
    out = bytearray()
    tail = b"\t" + _escape(source_file.encode()) + b"\n"
    rows = 0
    try:
        for number, raw in enumerate(io.BytesIO(data), start=1):
            record = parse_line(path, number, raw, stream.model)
            out += "\t".join(stream.values(record)).encode()
            out += b"\t"
            out += _escape(raw)
            out += tail
            rows += 1
    except LakeRecordError as error:
        raise MalformedFile(str(error)) from None
    return bytes(out), rows


class FileLoader:
    """Loads single files over one connection."""

    def __init__(self, conn: psycopg.Connection, lake: Lake, stream: Stream) -> None:
        self.conn = conn
        self.lake = lake
        self.stream = stream
        self.table = sql.SQL(stream.table)
        self.columns = sql.SQL(", ").join(map(sql.Identifier, stream.copy_columns))

    def _copy(self, target: sql.Composable, buffer: bytes, source_file: str) -> None:
        statement = sql.SQL("copy {} ({}) from stdin").format(target, self.columns)
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(buffer)
            faults.reached("in-copy", source_file)

    def _upsert(self, buffer: bytes, source_file: str) -> None:
        key = sql.SQL(", ").join(map(sql.Identifier, self.stream.key))
        newer = sql.Identifier(self.stream.newer)
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
            for c in self.stream.copy_columns
            if c not in self.stream.key
        )
        self.conn.execute(
            sql.SQL(
                "create temp table load_rows (like {} including defaults) on commit drop"
            ).format(self.table)
        )
        self._copy(sql.Identifier("load_rows"), buffer, source_file)
        self.conn.execute(
            sql.SQL(
                "insert into {table} as t ({columns}) "
                "select distinct on ({key}) {columns} from load_rows order by {key}, {newer} desc "
                "on conflict ({key}) do update set {updates}, loaded_at = now() "
                "where excluded.{newer} > t.{newer}"
            ).format(table=self.table, columns=self.columns, key=key, newer=newer, updates=updates)
        )

    def load(self, path: Path) -> FileResult:
        relative = self.lake.relative(path)
        data = path.read_bytes()
        checksum = hashlib.blake2b(data, digest_size=16).hexdigest()
        same = self.conn.execute(
            "select file_path from raw.load_audit where checksum = %s and stream = %s",
            [checksum, self.stream.name],
        ).fetchone()
        self.conn.rollback()
        if same:
            return FileResult(relative, "skipped", mode="checksum")
        try:
            buffer, rows = copy_buffer(path, data, self.stream, relative)
        except MalformedFile as error:
            return self._quarantine(path, relative, str(error))
        for attempt in range(5):
            try:
                # the file's transaction, opened explicitly: `_write`'s savepoint is then a
                # savepoint (on an idle connection, `transaction()` would commit the rows
                # on its own, and a crash before the audit row left rows without it)
                with self.conn.transaction():
                    mode = self._write(buffer, relative)
                    self.conn.execute(
                        "insert into raw.load_audit "
                        "(file_path, stream, checksum, size_bytes, row_count, load_mode) "
                        "values (%s, %s, %s, %s, %s, %s) on conflict (file_path) do update set "
                        "checksum = excluded.checksum, size_bytes = excluded.size_bytes, "
                        "row_count = excluded.row_count, load_mode = excluded.load_mode, "
                        "loaded_at = now()",
                        [relative, self.stream.name, checksum, len(data), rows, mode],
                    )
                    faults.reached("before-commit", relative)
                return FileResult(relative, "loaded", rows=rows, mode=mode)
            except _RETRYABLE:
                time.sleep(0.05 * 2**attempt)
            except errors.DataError as error:
                where = error.diag.context or ""
                reason = f"{path}: PostgreSQL refused a row: {error.diag.message_primary}"
                return self._quarantine(path, relative, f"{reason} ({where.strip()})")
        raise RuntimeError(f"{path}: gave up after repeated deadlocks")

    def _write(self, buffer: bytes, source_file: str) -> str:
        """Rows into the table inside the open transaction; returns the mode used."""
        try:
            with self.conn.transaction():  # a savepoint inside the file's transaction
                self._copy(self.table, buffer, source_file)
            return "copy"
        except errors.UniqueViolation:
            self._upsert(buffer, source_file)
            return "upsert"

    def _quarantine(self, path: Path, relative: str, reason: str) -> FileResult:
        moved = self.lake.quarantine(path, reason, stream=self.stream.name)
        log.error("quarantined %s: %s (moved to %s)", relative, reason, moved)
        return FileResult(relative, "quarantined", reason=reason)


# worker processes: one connection each -------------------------------------------------
_worker: FileLoader | None = None


def _init_worker(url: str, lake_root: str, stream_key: str) -> None:
    global _worker
    conn = psycopg.connect(url)
    _worker = FileLoader(conn, Lake(Path(lake_root)), STREAMS[stream_key])


def _load_in_worker(path: str) -> FileResult:
    assert _worker is not None
    return _worker.load(Path(path))


def pending_files(conn: psycopg.Connection, lake: Lake, stream: Stream) -> tuple[list[Path], int]:
    """Files not yet loaded, and how many were skipped as already loaded (same path and
    size in the audit: lake files are immutable, so they are not even read)."""
    audited = dict(
        conn.execute(
            "select file_path, size_bytes from raw.load_audit where stream = %s", [stream.name]
        ).fetchall()
    )
    conn.rollback()
    todo, skipped = [], 0
    for path in stream.files(lake):
        if audited.get(lake.relative(path)) == path.stat().st_size:
            skipped += 1
        else:
            todo.append(path)
    return todo, skipped


def load_stream(
    url: str,
    lake: Lake,
    stream_key: str,
    *,
    workers: int = 2,
    on_result: Callable[[FileResult], None] | None = None,
) -> LoadSummary:
    stream = STREAMS[stream_key]
    started = time.monotonic()
    summary = LoadSummary(stream=stream_key)
    with psycopg.connect(url) as conn:
        ensure_raw_schema(conn)
        todo, skipped = pending_files(conn, lake, stream)
        summary.files = summary.skipped = skipped
        progress = Progress(f"load {stream_key}", unit="files", total=len(todo))
        log.info("%s: %d files to load, %d already loaded", stream_key, len(todo), skipped)

        def record(result: FileResult) -> None:
            summary.add(result)
            progress.advance()
            if on_result:
                on_result(result)

        if workers <= 1 or len(todo) <= 1:
            loader = FileLoader(conn, lake, stream)
            for path in todo:
                record(loader.load(path))
        else:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(url, str(lake.root), stream_key),
            ) as pool:
                futures = [pool.submit(_load_in_worker, str(p)) for p in todo]
                for future in as_completed(futures):
                    record(future.result())
    summary.seconds = time.monotonic() - started
    progress.done()
    if summary.quarantined:
        log.error(
            "%s: %d file(s) quarantined under %s; see the .reason.json notes beside them",
            stream_key,
            summary.quarantined,
            lake.quarantine_root / stream.name,
        )
    return summary
