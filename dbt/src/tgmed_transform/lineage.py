"""The project's graph as the orchestrator needs it, read from dbt's own manifest
(`dbt parse`): every model and seed (asset key `<schema>/<name>`, its folder as the
group, its description, its upstream models, seeds and sources) and every test (data and
unit tests) with the model it checks.

The orchestrator's image carries no dbt (no adapter, no dbt-core): it reads this file,
committed beside its code (orchestrator/src/tgmed_orchestrator/dbt_lineage.json) and
kept current by a test. After changing models: `make dbt-lineage`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tgmed_transform.settings import TransformSettings

ASSET_KINDS = {"model", "seed", "snapshot"}


def _key(node: dict[str, Any]) -> list[str]:
    return [node["schema"], node.get("alias") or node["name"]]


def compact(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest cut down to what Dagster shows (stable order, no paths or times)."""
    nodes = manifest["nodes"]
    sources = manifest["sources"]
    assets: dict[str, Any] = {}
    for unique_id, node in sorted(nodes.items()):
        if node["resource_type"] not in ASSET_KINDS or node["package_name"] != "tgmed":
            continue
        folder = (
            node["fqn"][1] if node["resource_type"] == "model" and len(node["fqn"]) > 2 else None
        )
        assets[unique_id] = {
            "asset_key": _key(node),
            "kind": node["resource_type"],
            "group": folder or ("seeds" if node["resource_type"] == "seed" else "dbt"),
            "description": node.get("description") or "",
            "materialized": node["config"].get("materialized"),
            "deps": sorted(
                d for d in node["depends_on"].get("nodes", []) if d.split(".")[0] != "macro"
            ),
        }
    consumers: dict[str, str] = {}
    for unique_id in sorted(assets):
        for dep in assets[unique_id]["deps"]:
            consumers.setdefault(dep, unique_id)
    checks: dict[str, Any] = {}
    for unique_id, node in sorted(nodes.items()):
        if node["resource_type"] != "test":
            continue
        target = node.get("attached_node")
        if target is None:  # a source's test: checked on the model that reads the source
            sources_tested = [
                d for d in node["depends_on"].get("nodes", []) if d.startswith("source.")
            ]
            target = consumers.get(sources_tested[0]) if sources_tested else None
        if target not in assets:
            continue
        checks[unique_id] = {
            "asset": target,
            "name": node["name"],
            "kind": "data_test",
            "description": node.get("description") or _test_description(node),
        }
    for unique_id, test in sorted((manifest.get("unit_tests") or {}).items()):
        target = next((d for d in test["depends_on"].get("nodes", []) if d in assets), None)
        if target is None:
            continue
        checks[unique_id] = {
            "asset": target,
            "name": f"unit_{test['name']}",
            "kind": "unit_test",
            "description": test.get("description") or "dbt unit test",
        }
    source_keys = {
        unique_id: [source["schema"], source["name"]]
        for unique_id, source in sorted(sources.items())
    }
    return {"assets": assets, "sources": source_keys, "checks": checks}


def _test_description(node: dict[str, Any]) -> str:
    meta = node.get("test_metadata") or {}
    column = node.get("column_name")
    what = meta.get("name", "test")
    return f"dbt test {what}" + (f" on {column}" if column else "")


def parse_manifest(project: Path) -> dict[str, Any]:
    """`dbt parse` (no database connection) into a temporary target folder."""
    from dbt.cli.main import dbtRunner

    for name, value in {
        "DBT_PG_HOST": "localhost",
        "DBT_PG_PORT": "5432",
        "DBT_PG_USER": "parse",
        "DBT_PG_PASSWORD": "",
        "DBT_PG_DBNAME": "parse",
    }.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DBT_USE_COLORS", "false")  # as the build: no colour codes in logs
    with tempfile.TemporaryDirectory() as target:
        with contextlib.redirect_stdout(sys.stderr):
            result = dbtRunner().invoke(
                [
                    "parse",
                    "--project-dir",
                    str(project),
                    "--profiles-dir",
                    str(project),
                    "--target-path",
                    target,
                ]
            )
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
        return json.loads((Path(target) / "manifest.json").read_text(encoding="utf-8"))


def lineage_text(project: Path | None = None) -> str:
    project = project or TransformSettings.model_fields["dbt_project_dir"].default
    return json.dumps(compact(parse_manifest(project)), indent=1, sort_keys=True) + "\n"


def write_lineage(out: Path | None) -> int:
    text = lineage_text()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        counts = json.loads(text)
        print(
            f"{out}: {len(counts['assets'])} models and seeds, {len(counts['checks'])} tests",
            file=sys.stderr,
        )
    return 0
