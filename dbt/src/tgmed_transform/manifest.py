"""dbt's manifest for the orchestrator: `dbt parse` (no database connection), cut to what
dagster-dbt reads (`@dbt_assets(manifest=...)`: nodes, sources, unit tests, the graph's
maps) and made stable (no parse times, ids or absolute paths), so that the committed copy
(orchestrator/src/tgmed_orchestrator/dbt_manifest.json) changes only when the project
does. The orchestrator's image carries no dbt; a test keeps the copy current. After
changing models: `make dbt-manifest`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tgmed_transform.settings import TransformSettings

# what dagster-dbt reads from a manifest; macros and docs (most of its size) it does not
KEPT = (
    "metadata",
    "nodes",
    "sources",
    "unit_tests",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "selectors",
    "groups",
    "parent_map",
    "child_map",
)
UNSTABLE_METADATA = {
    "generated_at",
    "invocation_id",
    "invocation_started_at",
    "run_started_at",
    "env",
}
UNSTABLE_NODE = {"created_at", "root_path", "build_path", "compiled_path", "raw_code"}


def trimmed(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what dagster-dbt never reads and what changes on every parse."""
    kept = {key: manifest[key] for key in KEPT if key in manifest}
    kept["metadata"] = {k: v for k, v in manifest["metadata"].items() if k not in UNSTABLE_METADATA}
    for section in ("nodes", "sources", "unit_tests"):
        kept[section] = {
            unique_id: {k: v for k, v in node.items() if k not in UNSTABLE_NODE}
            for unique_id, node in (manifest.get(section) or {}).items()
        }
    return kept


@contextlib.contextmanager
def parse_environment() -> Iterator[None]:
    """The same profile on every machine (the database's name is in every node), set for
    the parse only; the shell's DBT_PG_* come back after it."""
    fixed = {
        "DBT_PG_HOST": "localhost",
        "DBT_PG_PORT": "5432",
        "DBT_PG_USER": "parse",
        "DBT_PG_PASSWORD": "",
        "DBT_PG_DBNAME": "parse",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",  # as the build: no colour codes in logs
    }
    before = {name: os.environ.get(name) for name in fixed}
    os.environ.update(fixed)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_manifest(project: Path) -> dict[str, Any]:
    """`dbt parse` (no database connection) into a temporary target folder."""
    from dbt.cli.main import dbtRunner

    with parse_environment(), tempfile.TemporaryDirectory() as target:
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


def manifest_text(project: Path | None = None) -> str:
    project = project or TransformSettings.model_fields["dbt_project_dir"].default
    return json.dumps(trimmed(parse_manifest(project)), indent=0, sort_keys=True) + "\n"


def write_manifest(out: Path | None) -> int:
    text = manifest_text()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        manifest = json.loads(text)
        print(
            f"{out}: {len(manifest['nodes'])} nodes, {len(manifest['unit_tests'])} unit tests"
            f" ({len(text) // 1024} KiB)",
            file=sys.stderr,
        )
    return 0
