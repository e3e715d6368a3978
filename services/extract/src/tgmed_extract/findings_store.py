"""What earlier runs found in each text, so that a text is extracted once per version,
not once per file it appears in.

Every scrape re-reads the posts of its refresh window (SCRAPER_REFRESH_DAYS) and writes
them again in a new message file, with the same text; sellers repost their standard
posts. The stage's extraction files are per message file, so without this each run
would extract the whole window again (an hourly scrape with a 7-day window: ~170 times
each post). The store keeps, per version tag, the findings of every distinct text
(keyed by a 128-bit BLAKE2b hash of the text) in `state/extract/findings-<tag>.sqlite`
in the lake: a lookup is a few microseconds, an extraction a hundred or more.

SQLite in WAL mode: several worker processes read and write it at once, a chunk of a
file's new texts per transaction; a crash loses at most the texts of the chunks in
flight, which the next run extracts again. Within a run, a process *claims* the texts it
is about to extract (`claim`: one claim per text, whoever comes first), so that two
processes never extract the same text at once: the other one takes the findings from the
store when they are there (`get_many`). A run starts with no claims (`clear_claims`).
A store that cannot be opened or read (a corrupt file, a read-only lake) is reported and set aside:
the run extracts everything, as if it had no store. Stores of other version tags are
removed by the run that starts a new tag (their findings are of another extractor or
catalog, never reused).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

Counts = tuple[int, int, int, int, int]  # with products, mentions, prices, services, candidates

# Findings rows are appended in rowid order and found through an index of their keys: a
# table clustered on the random hash (`without rowid`, as the store was first) rewrote a
# random page of ~8 wide rows for every text stored, 60-85 us a text and growing with the
# store, inside the write lock every process of a run waits on (measured in
# docs/benchmarks.md). Index entries are small: ~130 to a page. Stores of the first
# layout hold the same columns and keep working (the index is then redundant).
_SCHEMA = """
create table if not exists findings (
    text_hash blob not null,
    findings text not null,
    with_products integer not null,
    mentions integer not null,
    prices integer not null,
    services integer not null,
    candidates integer not null
);
create unique index if not exists findings_by_text on findings (text_hash);
create table if not exists claims (text_hash blob primary key, owner integer not null)
without rowid
"""
# A page cache that holds the key index of a few million texts (per process, at most
# this much), and a checkpoint every ~40 MB of WAL rather than every 4 MB: each
# checkpoint writes back the index pages a chunk touched, fewer of them rewritten twice.
_PRAGMAS = ("journal_mode=wal", "synchronous=normal", "cache_size=-65536",
            "wal_autocheckpoint=10000")  # fmt: skip


# The wanted keys' findings, and their claims. `cross join` keeps SQLite's planner from
# scanning the whole store per lookup (it would, with no statistics on the temp table).
STORED = (
    "select f.text_hash, f.findings, f.with_products, f.mentions, f.prices, f.services, "
    "f.candidates, c.owner is not null from wanted w "
    "cross join findings f on f.text_hash = w.k left join claims c on c.text_hash = w.k"
)
MINE = "select w.k from wanted w cross join claims c on c.text_hash = w.k where c.owner = ?"


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
            for pragma in _PRAGMAS:
                conn.execute(f"pragma {pragma}")
            conn.executescript(_SCHEMA)
            conn.execute("create temp table if not exists wanted (k blob primary key)")
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

    def _wanted(self, keys: list[bytes]) -> None:
        """`keys` into the temp table `wanted` (inside the caller's transaction)."""
        assert self._conn is not None
        self._conn.execute("delete from wanted")
        self._conn.executemany("insert or ignore into wanted values (?)", ((k,) for k in keys))

    def get_many(self, keys: list[bytes]) -> dict[bytes, tuple[str, Counts, bool]]:
        """The stored findings of those of `keys` the store holds (one join): (findings,
        counts, whether a process of this run extracted them: the text is claimed)."""
        found: dict[bytes, tuple[str, Counts, bool]] = {}
        if self._conn is None or not keys:
            return found
        try:
            with self._conn:  # one transaction: the temp table's rows are not committed one by one
                self._conn.execute("begin")
                self._wanted(keys)
                for row in self._conn.execute(STORED):
                    found[row[0]] = (row[1], tuple(row[2:7]), bool(row[7]))  # type: ignore[assignment]
        except sqlite3.Error as error:
            self._set_aside(error)
            return {}
        return found

    def claim(self, keys: list[bytes]) -> set[bytes]:
        """Claim `keys` for this process: the ones it got (no other process of the run
        claimed them first), which it must extract and `put`. A store out of use: all."""
        if self._conn is None or not keys:
            return set(keys)
        owner = os.getpid()
        try:
            with self._conn:
                self._conn.execute("begin immediate")
                self._wanted(keys)
                self._conn.execute("insert or ignore into claims select k, ? from wanted", (owner,))
                return {row[0] for row in self._conn.execute(MINE, (owner,))}
        except sqlite3.Error as error:
            self._set_aside(error)
            return set(keys)

    def clear_claims(self) -> None:
        """A run starts with no claims (a crashed run's are stale)."""
        if self._conn is None:
            return
        try:
            self._conn.execute("delete from claims")
        except sqlite3.Error as error:
            self._set_aside(error)

    def put(self, rows: list[tuple[bytes, str, Counts]]) -> None:
        """Texts extracted in this chunk, in one transaction."""
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
