"""The platform's asset graph as the UI shows it after the pipeline's first run on the
sample: every asset key, every check on it and the status of that check's latest
execution. Recorded once, before the orchestrator moved onto dagster-dbt (issue 25), in
deploy/asset_parity.json; the local-mode test (orchestrator/tests/test_pipeline_local.py),
the compose e2e (deploy/e2e.py) and the Kubernetes e2e (k8s/e2e.py) compare what their
Dagster shows with it, so a change of how assets are built cannot drop or rename an
asset or a check, or change what a check says, in any launch mode unnoticed.

The move itself changed it once, on purpose: dbt's 5 tests on sources became checks on
the raw tables they test (they were on the staging model reading each source), and its
5 unit tests are no longer checks (dagster-dbt reads no unit-test result; a failing one
still fails the dbt step, by name).

A change meant to alter the graph records it again from the local-mode test:

    TGMED_RECORD_ASSET_PARITY=1 .venv/bin/pytest orchestrator/tests/test_pipeline_local.py
"""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = Path(__file__).resolve().with_name("asset_parity.json")


def observed(nodes: list[dict]) -> dict[str, dict[str, str | None]]:
    """asset key -> {check name: its latest execution's status (None: never ran)}, from
    the catalog `DagsterClient.assets()` reads (its `assetNodes`)."""
    graph: dict[str, dict[str, str | None]] = {}
    for node in nodes:
        checks = (node.get("assetChecksOrError") or {}).get("checks") or []
        graph["/".join(node["assetKey"]["path"])] = {
            check["name"]: (check.get("executionForLatestMaterialization") or {}).get("status")
            for check in sorted(checks, key=lambda c: c["name"])
        }
    return dict(sorted(graph.items()))


def recorded() -> dict[str, dict[str, str | None]]:
    return json.loads(RECORDED.read_text(encoding="utf-8"))["assets"]


def differences(
    want: dict[str, dict[str, str | None]], found: dict[str, dict[str, str | None]]
) -> list[str]:
    """Each asset or check missing, added or with another status, one line each."""
    lines = [f"asset missing: {key}" for key in sorted(set(want) - set(found))]
    lines += [f"asset added: {key}" for key in sorted(set(found) - set(want))]
    for key in sorted(set(want) & set(found)):
        for name in sorted(set(want[key]) | set(found[key])):
            if name not in found[key]:
                lines.append(f"check missing: {key}:{name}")
            elif name not in want[key]:
                lines.append(f"check added: {key}:{name}")
            elif want[key][name] != found[key][name]:
                lines.append(f"check {key}:{name}: {found[key][name]}, recorded {want[key][name]}")
    return lines


def record(graph: dict[str, dict[str, str | None]]) -> None:
    checks = sum(len(c) for c in graph.values())
    RECORDED.write_text(
        json.dumps(
            {
                "what": "asset keys, check keys and statuses after telegram_pipeline's first"
                " run on the sample (deploy/asset_parity.py)",
                "counts": {"assets": len(graph), "checks": checks},
                "assets": graph,
            },
            indent=1,
            sort_keys=False,
        )
        + "\n",
        encoding="utf-8",
    )
