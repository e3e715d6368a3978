"""What a dbt build tells Dagster when Dagster launched it (Pipes): dbt's own result
events (a model, seed or snapshot built, a test's result), as dbt writes them in its JSON
log, one custom message each, with the row count of the relation a model or seed built.
The orchestrator turns them into materializations and check results with dagster-dbt and
the same manifest (`DbtCliEventMessage.to_default_asset_events`): this stage needs no
names from it."""

from __future__ import annotations

import logging
from typing import Any

from tgmed_common.logs import redact
from tgmed_common.settings import load_settings
from tgmed_transform.settings import TransformSettings

log = logging.getLogger(__name__)
DBT_EVENT = "dbt_event"  # the custom message's tag (tgmed_orchestrator.assets.dbt reads it)
RESULT_EVENTS = {"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"}
BUILT = {"success"}


def result_event(event: Any) -> dict[str, Any] | None:
    """dbt's JSON form of a result event (what `--log-format json` prints), else None."""
    if event.info.name not in RESULT_EVENTS:
        return None
    from dbt_common.events.functions import msg_to_dict

    raw = msg_to_dict(event)
    raw["info"]["msg"] = redact(str(raw["info"].get("msg") or ""))[:2000]
    return raw


def built_relation(raw: dict[str, Any]) -> str | None:
    """`schema.name` of what a successful model or seed event built."""
    node = raw["data"].get("node_info") or {}
    relation = node.get("node_relation") or {}
    if node.get("node_status") not in BUILT or raw["info"]["name"] == "LogTestResult":
        return None
    name = relation.get("alias") or node.get("node_name")
    return f"{relation['schema']}.{name}" if relation.get("schema") and name else None


def relation_rows(relations: list[str]) -> dict[str, int]:
    """Row counts of the relations dbt built (one connection; a failure is logged)."""
    if not relations:
        return {}
    import psycopg2  # dbt-postgres' driver: already in this image
    from psycopg2 import sql

    url = load_settings(TransformSettings).database_url.get_secret_value()
    counts: dict[str, int] = {}
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            for relation in relations:
                schema, name = relation.split(".", 1)
                cursor.execute(
                    sql.SQL("select count(*) from {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(name)
                    )
                )
                counts[relation] = cursor.fetchone()[0]
    except psycopg2.Error as error:
        log.warning("could not count the rows of the models built: %s", error)
    return counts


def report_events(pipes: Any, events: list[dict[str, Any]]) -> None:
    relations = [built_relation(raw) for raw in events]
    rows = relation_rows(sorted({r for r in relations if r}))
    for raw, relation in zip(events, relations, strict=True):
        message: dict[str, Any] = {"tgmed": DBT_EVENT, "event": raw}
        if relation in rows:
            message["rows"] = rows[relation]
        pipes.report_custom_message(message)
