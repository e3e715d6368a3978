"""What a load tells Dagster when Dagster launched it (Pipes): the raw table as a
materialization with numeric metadata, and the quarantine check on it. Asset keys are
`<schema>/<table>`, the orchestrator's names for the raw tables."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from tgmed_common.settings import load_settings
from tgmed_loader.settings import DatabaseSettings
from tgmed_loader.streams import STREAMS

log = logging.getLogger(__name__)
QUARANTINE_CHECK = "no_quarantined_files"


def table_rows(url: str, table: str) -> int | None:
    schema, name = table.split(".")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            query = sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            return conn.execute(query).fetchone()[0]
    except psycopg.Error as error:
        log.warning("could not count %s: %s", table, error)
        return None


def report_loads(pipes: Any, summary: dict[str, Any]) -> None:
    """`summary` is one stream's (or `load all`'s, with `streams`); init-db reports nothing."""
    if summary.get("stage") == "init-db":
        return
    url = load_settings(DatabaseSettings).database_url.get_secret_value()
    for stream in summary.get("streams") or [summary]:
        table = STREAMS[stream["stream"]].table
        key = table.replace(".", "/")
        metadata: dict[str, Any] = {
            "rows_loaded": stream["rows"],
            "files_loaded": stream["loaded"],
            "files_skipped": stream["skipped"],
            "files_quarantined": stream["quarantined"],
            "files_upserted": stream["upserted_files"],
            "rows_per_second": stream["rows_per_second"],
            "seconds": stream["seconds"],
        }
        rows = table_rows(url, table)
        if rows is not None:
            metadata["table_rows"] = rows
        pipes.report_asset_materialization(asset_key=key, metadata=metadata)
        reasons = stream.get("quarantine_reasons") or {}
        pipes.report_asset_check(
            asset_key=key,
            check_name=QUARANTINE_CHECK,
            passed=not reasons,
            severity="ERROR",
            metadata={
                "files_quarantined": len(reasons),
                "files": {
                    "raw_value": "\n".join(f"- {path}: {why}" for path, why in reasons.items())
                    or "none",
                    "type": "md",
                },
            },
        )
