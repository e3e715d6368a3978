"""What a dbt build tells Dagster when Dagster launched it (Pipes): every model and seed
built as a materialization (row count, seconds), every test as a check result on its
model. The names come from the orchestrator (Pipes extras `dbt_nodes`: a node's
unique_id -> {"asset_key": "marts/fct_messages"} or {"asset_key": ..., "check_name":
...}), which read them from the same project (`tgmed-transform lineage`)."""

from __future__ import annotations

import logging
from typing import Any

from tgmed_common.settings import load_settings
from tgmed_transform.settings import TransformSettings

log = logging.getLogger(__name__)
BUILT = {"success"}
CHECKED = {"pass", "warn", "fail", "error"}


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


def report_nodes(pipes: Any, summary: dict[str, Any]) -> None:
    names: dict[str, dict[str, str]] = (pipes.extras or {}).get("dbt_nodes") or {}
    nodes = summary.get("nodes") or []
    built = [n for n in nodes if n["status"] in BUILT and n["relation"]]
    rows = relation_rows([n["relation"] for n in built])
    for node in nodes:
        name = names.get(node["unique_id"])
        if name is None:
            if node["kind"] in {"model", "seed", "test", "unit_test"}:
                log.warning(
                    "%s: not known to the orchestrator (run tgmed-transform lineage)",
                    node["unique_id"],
                )
            continue
        if "check_name" in name and node["status"] in CHECKED:
            failures = node["failures"] or 0
            pipes.report_asset_check(
                asset_key=name["asset_key"],
                check_name=name["check_name"],
                passed=node["status"] in {"pass", "warn"},
                severity="WARN" if node["status"] == "warn" else "ERROR",
                metadata={
                    "status": node["status"],
                    "failing_rows": failures,
                    "seconds": node["seconds"],
                    "message": node["message"] or node["status"],
                },
            )
        elif "check_name" not in name and node["status"] in BUILT:
            metadata: dict[str, Any] = {"seconds": node["seconds"], "status": node["status"]}
            if node["relation"] in rows:
                metadata["rows"] = rows[node["relation"]]
            pipes.report_asset_materialization(asset_key=name["asset_key"], metadata=metadata)
