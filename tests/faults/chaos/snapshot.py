"""What a run left behind, as data: every lake stream and every warehouse table as its
row count and its set of keys (and a checksum of them), plus the lake's temporary files,
high-water marks and quarantine. Two snapshots compare into lost and duplicated rows.

Lake streams are read through the lake contract's listing (`tgmed_common.lake.Lake`);
records are parsed as plain JSON so that a broken file is counted, not fatal. Warehouse
tables are discovered from the catalog (raw, and every schema dbt builds), each keyed by
its primary key, else a unique index, else the columns dbt tests `unique`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tgmed_common.atomic import is_temp
from tgmed_common.lake import Lake

# bookkeeping, not data: which lake files were loaded (file names carry run ids, so a
# killed-then-resumed sequence writes other files than a clean run); one row per dbt
# invocation that wrote anything (keyed by dbt's invocation id: a retried or rerun
# build adds its own row)
BOOKKEEPING_TABLES = {"raw.load_audit", "marts.dbt_builds"}
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class TableState:
    name: str
    rows: int
    keys: frozenset[tuple]

    @property
    def distinct(self) -> int:
        return len(self.keys)

    @property
    def checksum(self) -> str:
        digest = hashlib.sha256()
        for key in sorted(self.keys, key=repr):
            digest.update(repr(key).encode())
        return digest.hexdigest()[:16]


@dataclass
class Snapshot:
    tables: dict[str, TableState] = field(default_factory=dict)
    temp_files: list[str] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, str]:
        return {
            name: f"{t.rows} rows, keys {t.checksum}" for name, t in sorted(self.tables.items())
        }


@dataclass
class Difference:
    lost: dict[str, int] = field(default_factory=dict)  # table -> keys missing
    duplicated: dict[str, int] = field(default_factory=dict)  # table -> rows beyond one per key
    unexpected: dict[str, int] = field(default_factory=dict)  # table -> keys a clean run lacks
    missing_tables: list[str] = field(default_factory=list)
    extra_tables: list[str] = field(default_factory=list)

    @property
    def lost_rows(self) -> int:
        return sum(self.lost.values())

    @property
    def duplicated_rows(self) -> int:
        return sum(self.duplicated.values()) + sum(self.unexpected.values())

    @property
    def equal(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.unexpected
            or self.missing_tables
            or self.extra_tables
        )

    def describe(self) -> str:
        if self.equal:
            return "equal to the clean run"
        parts = []
        for label, values in [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("unexpected", self.unexpected),
        ]:
            if values:
                parts.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        if self.missing_tables:
            parts.append("missing tables: " + ", ".join(self.missing_tables))
        if self.extra_tables:
            parts.append("extra tables: " + ", ".join(self.extra_tables))
        return "; ".join(parts)


def compare(expected: Snapshot, got: Snapshot) -> Difference:
    """How `got` differs from `expected` (a clean run's), table by table."""
    diff = Difference()
    for name, want in expected.tables.items():
        if name in BOOKKEEPING_TABLES:
            continue
        have = got.tables.get(name)
        if have is None:
            diff.missing_tables.append(name)
            diff.lost[name] = want.distinct
            continue
        if lost := len(want.keys - have.keys):
            diff.lost[name] = lost
        if extra := len(have.keys - want.keys):
            diff.unexpected[name] = extra
        if (twice := have.rows - have.distinct) > (want.rows - want.distinct):
            diff.duplicated[name] = twice - (want.rows - want.distinct)
    diff.extra_tables = sorted(set(got.tables) - set(expected.tables) - BOOKKEEPING_TABLES)
    return diff


# --- the lake ---------------------------------------------------------------------------


def _record_keys(files: list[Path], fields: tuple[str, ...]) -> tuple[int, set[tuple]]:
    rows, keys = 0, set()
    for path in files:
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            rows += 1
            try:
                record = json.loads(line)
                keys.add(tuple(record.get(f) for f in fields))
            except ValueError:
                keys.add(("unparseable", str(path), rows))
    return rows, keys


def lake_snapshot(root: Path) -> Snapshot:
    lake = Lake(root)
    snap = Snapshot()
    for stream, files, fields in [
        ("telegram_messages", lake.message_files(), ("channel_username", "message_id")),
        (
            "yolo_detections",
            lake.detection_files(),
            ("channel_username", "message_id", "model_hash"),
        ),
    ]:
        rows, keys = _record_keys(files, fields)
        snap.tables[f"lake:{stream}"] = TableState(f"lake:{stream}", rows, frozenset(keys))
    media = {
        (lake.relative(p), hashlib.sha256(p.read_bytes()).hexdigest()[:16])
        for p in lake.media_files()
    }
    snap.tables["lake:telegram_media"] = TableState(
        "lake:telegram_media", len(media), frozenset(media)
    )
    if root.is_dir():
        snap.temp_files = sorted(
            lake.relative(p) for p in root.rglob(".*") if p.is_file() and is_temp(p)
        )
        for state in sorted((root / "state").rglob("*.json")):
            try:
                snap.marks[state.stem] = int(json.loads(state.read_text())["last_message_id"])
            except (ValueError, KeyError, TypeError):
                snap.marks[state.stem] = -1  # unreadable: a finding in itself
        snap.quarantined = [lake.relative(p) for p in lake.quarantined()]
    return snap


# --- the warehouse ----------------------------------------------------------------------


def dbt_unique_columns(dbt_dir: Path) -> dict[str, list[str]]:
    """model or seed name -> the column(s) dbt tests `unique` (read from the yml files)."""
    import yaml

    found: dict[str, list[str]] = {}
    for path in sorted(dbt_dir.rglob("*.yml")):
        if "target" in path.parts or "dbt_packages" in path.parts:
            continue
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(document, dict):
            continue
        for kind in ("models", "seeds", "snapshots"):
            nodes = document.get(kind)
            for node in nodes if isinstance(nodes, list) else []:
                if not isinstance(node, dict) or "name" not in node:
                    continue
                for column in node.get("columns") or []:
                    tests = column.get("data_tests") or column.get("tests") or []
                    if isinstance(column, dict) and "unique" in tests:
                        found.setdefault(node["name"], []).append(column["name"])
    return found


def _index_keys(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """Columns of the primary key, else of the first unique index."""
    rows = conn.execute(
        """
        select i.indisprimary, array_agg(a.attname order by k.ordinality)
        from pg_index i
        join pg_class c on c.oid = i.indrelid
        join pg_namespace n on n.oid = c.relnamespace
        cross join lateral unnest(i.indkey) with ordinality k(attnum, ordinality)
        join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
        where n.nspname = %s and c.relname = %s and i.indisunique
        group by i.indexrelid, i.indisprimary
        order by i.indisprimary desc, i.indexrelid
        """,
        [schema, table],
    ).fetchall()
    return list(rows[0][1]) if rows else []


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


_VOLATILE = re.compile(r"(^|_)(loaded|scraped|detected|updated|built)_at$")


def warehouse_snapshot(url: str, dbt_dir: Path) -> Snapshot:
    snap = Snapshot()
    unique = dbt_unique_columns(dbt_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema <> all(%s) "
            "and table_schema not like 'pg_temp%%' order by 1, 2",
            [list(SYSTEM_SCHEMAS)],
        ).fetchall()
        for schema, table in tables:
            key = (
                _index_keys(conn, schema, table)
                or unique.get(table)
                or [c for c in _columns(conn, schema, table) if not _VOLATILE.search(c)]
            )
            rows = conn.execute(
                sql.SQL("select {} from {}.{}").format(
                    sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in key),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            ).fetchall()
            name = f"{schema}.{table}"
            snap.tables[name] = TableState(name, len(rows), frozenset(map(tuple, rows)))
    return snap


def snapshot(lake_root: Path, url: str, dbt_dir: Path) -> Snapshot:
    """The lake and the warehouse together."""
    snap = lake_snapshot(lake_root)
    snap.tables.update(warehouse_snapshot(url, dbt_dir).tables)
    return snap
