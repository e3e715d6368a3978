"""Every dbt model and seed as its own asset, with dbt's own lineage (sources -> staging
-> intermediate -> marts) and every dbt test (data and unit tests) as a check on its
model, all read from dbt's manifest through `dbt_lineage.json` (written by
`tgmed-transform lineage`; this image carries no dbt, and a test keeps the file current).

One multi-asset runs `tgmed-transform build` in the transform stage (its own image, with
the adapter); select one model in the UI and only it is rebuilt (`--select`). The
stage reports, through Pipes, each model built (row count, seconds) and each test's
result under the names given in the Pipes extras (`dbt_nodes`).

Why not dagster-dbt: it needs dbt-core (and reads the project with it) in the code
location; the lineage file gives the same graph with no dbt there, and the stage keeps
running in its own container in every launch mode."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import json
from importlib import resources
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MetadataValue,
    multi_asset,
)

from tgmed_orchestrator import stages
from tgmed_orchestrator.launchers import StageLauncher
from tgmed_orchestrator.outcomes import failure, reported

LINEAGE_FILE = "dbt_lineage.json"


def lineage() -> dict[str, Any]:
    text = resources.files("tgmed_orchestrator").joinpath(LINEAGE_FILE).read_text("utf-8")
    return json.loads(text)


LINEAGE = lineage()


def asset_key(unique_id: str) -> AssetKey:
    node = LINEAGE["assets"].get(unique_id)
    return AssetKey(node["asset_key"] if node else LINEAGE["sources"][unique_id])


def node_name(unique_id: str) -> str:
    return unique_id.split(".")[-1]


SPECS = [
    AssetSpec(
        asset_key(unique_id),
        group_name=node["group"],
        description=node["description"] or f"dbt {node['kind']} {node_name(unique_id)}",
        deps=[asset_key(dep) for dep in node["deps"]],
        skippable=True,  # a model dbt skips (an upstream failed) is not materialized
        kinds={"dbt", "postgres"},
        metadata={
            "dbt/unique_id": unique_id,
            "dbt/materialized": MetadataValue.text(node["materialized"] or ""),
        },
    )
    for unique_id, node in sorted(LINEAGE["assets"].items())
]
CHECK_SPECS = [
    AssetCheckSpec(
        check["name"],
        asset=asset_key(check["asset"]),
        description=f"{check['description']} ({unique_id})",
    )
    for unique_id, check in sorted(LINEAGE["checks"].items())
]
# what the transform stage reports under which name (Pipes extras)
DBT_NODES: dict[str, dict[str, str]] = {
    **{uid: {"asset_key": asset_key(uid).to_user_string()} for uid in LINEAGE["assets"]},
    **{
        uid: {"asset_key": asset_key(check["asset"]).to_user_string(), "check_name": check["name"]}
        for uid, check in LINEAGE["checks"].items()
    },
}
KEY_TO_NODE = {asset_key(uid): uid for uid in LINEAGE["assets"]}
CHECK_TO_NODE = {(asset_key(c["asset"]), c["name"]): uid for uid, c in LINEAGE["checks"].items()}


class DbtConfig(Config):
    full_refresh: bool = False  # rebuild the incremental models from raw


def selection(context: AssetExecutionContext) -> list[str] | None:
    """dbt's --select for this step: None when everything is selected; else the models
    and seeds chosen, and the data tests of the checks chosen (a source's test does not
    follow its model by itself)."""
    keys = set(context.selected_asset_keys)
    checks = set(context.selected_asset_check_keys)
    if keys == set(KEY_TO_NODE) and len(checks) == len(CHECK_TO_NODE):
        return None
    names = [node_name(KEY_TO_NODE[key]) for key in sorted(keys, key=str)]
    for check_key in sorted(checks, key=str):
        uid = CHECK_TO_NODE.get((check_key.asset_key, check_key.name))
        if uid and uid.startswith("test."):
            names.append(LINEAGE["checks"][uid]["name"])
    return names


@multi_asset(
    name="dbt_models",
    specs=SPECS,
    check_specs=CHECK_SPECS,
    can_subset=True,
    op_tags={"tgmed/stage": "transform"},
)
def dbt_models(context: AssetExecutionContext, config: DbtConfig, launcher: StageLauncher):
    command = stages.transform(config.full_refresh, selection(context))
    run = launcher.launch(context, command, extras={"dbt_nodes": DBT_NODES})
    counts = run.summary.get("counts") or {}
    context.log.info(
        f"dbt: {counts.get('model_success', 0)} models built, "
        f"{counts.get('test_pass', 0)} tests passed, {counts.get('test_fail', 0)} failed"
    )
    yield from reported(context, run)
    if not run.succeeded:
        raise failure(run)
