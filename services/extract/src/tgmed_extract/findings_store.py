"""What earlier runs found in each text, so that a text is extracted once per version,
not once per file it appears in.

Every scrape re-reads the posts of its refresh window (SCRAPER_REFRESH_DAYS) and writes
them again in a new message file, with the same text; sellers repost their standard
posts. The stage's extraction files are per message file, so without this each run
would extract the whole window again (an hourly scrape with a 7-day window: ~170 times
each post). The store keeps, per version tag, the findings of every distinct text
(keyed by a 128-bit BLAKE2b hash of the text) in `state/extract/findings-<tag>.sqlite`
in the lake: a lookup is a few microseconds, an extraction a hundred or more.

SQLite in WAL mode: several worker processes read and write it at once (each file's new
texts in one transaction, after the file's extraction file is written); a crash loses at
most the texts of the files in flight, which the next run extracts again. A store that
cannot be opened or read (a corrupt file, a read-only lake) is reported and set aside:
the run extracts everything, as if it had no store. Stores of other version tags are
removed by the run that starts a new tag (their findings are of another extractor or
catalog, never reused).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

Counts = tuple[int, int, int, int, int]  # with products, mentions, prices, services, candidates

_SCHEMA = """
create table if not exists findings (
    text_hash blob primary key,
    findings text not null,
    with_products integer not null,
    mentions integer not null,
    prices integer not null,
    services integer not null,
    candidates integer not null
) without rowid
"""


def store_path(lake_root: Path, tag: str) -> Path:
    return lake_root / "state" / "extract" / f"findings-{tag}.sqlite"


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def remove_other_versions(lake_root: Path, tag: str) -> list[Path]:
    """Delete the stores of version tags other than `tag`; the paths removed."""
    folder = store_path(lake_root, tag).parent
    keep = store_path(lake_root, tag).name
    removed = []
    for path in sorted(folder.glob("findings-*.sqlite*")) if folder.is_dir() else []:
        if not path.name.startswith(keep):  # keep the store and its -wal, -shm files
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class FindingsStore:
    """One process's connection to the store of one version tag."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.broken: str | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=normal")
            conn.execute(_SCHEMA)
            self._conn = conn
        except (sqlite3.Error, OSError) as error:
            self._set_aside(error)

    def _set_aside(self, error: BaseException) -> None:
        self.broken = f"{self.path}: {error}"
        log.warning(
            "the extraction store %s cannot be used (%s): this run extracts every text "
            "(the results are the same, only slower); delete the file if it stays so",
            self.path,
            error,
        )
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def get(self, key: bytes) -> tuple[str, Counts] | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "select findings, with_products, mentions, prices, services, candidates "
                "from findings where text_hash = ?",
                (key,),
            ).fetchone()
        except sqlite3.Error as error:
            self._set_aside(error)
            return None
        return None if row is None else (row[0], tuple(row[1:]))  # type: ignore[return-value]

    def get_many(self, keys: list[bytes]) -> dict[bytes, tuple[str, Counts]]:
        """The stored findings of those of `keys` the store holds (one join)."""
        found: dict[bytes, tuple[str, Counts]] = {}
        if self._conn is None or not keys:
            return found
        try:
            self._conn.execute("create temp table if not exists wanted (k blob primary key)")
            with self._conn:  # one transaction: the temp table's rows are not committed one by one
                self._conn.execute("begin")
                self._conn.execute("delete from wanted")
                self._conn.executemany(
                    "insert or ignore into wanted values (?)", ((k,) for k in keys)
                )
                for row in self._conn.execute(
                    "select f.text_hash, f.findings, f.with_products, f.mentions, f.prices, "
                    "f.services, f.candidates from wanted w join findings f on f.text_hash = w.k"
                ):
                    found[row[0]] = (row[1], tuple(row[2:]))  # type: ignore[assignment]
        except sqlite3.Error as error:
            self._set_aside(error)
            return {}
        return found

    def put(self, rows: list[tuple[bytes, str, Counts]]) -> None:
        """Texts extracted in this file, in one transaction."""
        if self._conn is None or not rows:
            return
        try:
            with self._conn:
                self._conn.execute("begin immediate")
                self._conn.executemany(
                    "insert or ignore into findings values (?, ?, ?, ?, ?, ?, ?)",
                    [(key, findings, *counts) for key, findings, counts in rows],
                )
        except sqlite3.Error as error:
            self._set_aside(error)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
