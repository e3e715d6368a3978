"""Every dbt model and seed as its own asset, with dbt's own lineage (sources -> staging
-> intermediate -> marts), and every data test as a check: dagster-dbt's `@dbt_assets`
on dbt's manifest (`dbt_manifest.json`, written by `tgmed-transform manifest`; this
image carries no dbt-core, and a test keeps the file current).

dbt runs in the transform stage (its own image, with the adapter), launched as every
stage is; the stage forwards dbt's result events through Pipes and dagster-dbt turns
them into materializations and check results here. Select one model in the UI and only
it and its tests run (dagster-dbt's subset selection, passed as `--select`).

Asset keys are `<schema>/<name>` (the warehouse's own names), groups the model's folder.
A test on a source (raw.*) is a check on that raw asset, which the load stage makes.
dbt's unit tests are not checks (dagster-dbt reads no result of theirs): they run before
their model, and a failing one fails the step with its name (the stage's summary)."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Config, Output

from tgmed_orchestrator import stages
from tgmed_orchestrator.launchers import StageLauncher, StageRun
from tgmed_orchestrator.outcomes import failure


@contextlib.contextmanager
def without_dbt_core() -> Iterator[None]:
    """dagster-dbt imported as in the code location's image, where dbt-core is absent:
    this code never runs dbt, it reads the manifest. Where dbt-core shares the
    environment (local mode's .venv holds every package), dagster-dbt would import it
    and select nodes with it, 1.1 s more in every process that loads the code (the code
    server, each run worker and step); with `dbt.version` unimportable while dagster-dbt
    loads, it takes its dbt-less path, as in docker and k8s. A process that already
    imported dbt (a test beside the transform stage's) is left as it is."""
    if "dbt.version" in sys.modules:
        yield
        return
    sys.modules["dbt.version"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        del sys.modules["dbt.version"]


with without_dbt_core():
    from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets
    from dagster_dbt.asset_utils import get_subset_selection_for_context
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage


MANIFEST_FILE = "dbt_manifest.json"
DBT_EVENT = "dbt_event"  # the stage's custom message (tgmed_transform.report)
MANIFEST = json.loads(
    resources.files("tgmed_orchestrator").joinpath(MANIFEST_FILE).read_text("utf-8")
)


class Translator(DagsterDbtTranslator):
    """Keys as the warehouse names things (schema and relation), groups by folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        props = dbt_resource_props  # a source has no alias: raw/<table>
        return AssetKey([props["schema"], props.get("alias") or props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        props = dbt_resource_props
        if props["resource_type"] == "model" and len(props["fqn"]) > 2:
            return props["fqn"][1]  # staging, intermediate, marts, reports
        return "seeds" if props["resource_type"] == "seed" else "dbt"


TRANSLATOR = Translator(
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True, enable_source_tests_as_checks=True
    )
)


class DbtConfig(Config):
    full_refresh: bool = False  # rebuild the incremental models from raw


def selection(context: AssetExecutionContext) -> tuple[list[str] | None, str | None]:
    """dbt's --select for this step (None: everything) and its indirect selection."""
    args, indirect = get_subset_selection_for_context(
        context,
        manifest=MANIFEST,
        select="fqn:*",
        exclude=None,
        selector=None,
        dagster_dbt_translator=TRANSLATOR,
        current_dbt_indirect_selection_env=None,
    )
    select = args[args.index("--select") + 1] if "--select" in args else "fqn:*"
    return (None if select == "fqn:*" else select.split()), indirect


def dbt_events(context: AssetExecutionContext, run: StageRun) -> Iterator[Any]:
    """dagster-dbt's materializations and check results for the stage's dbt events, each
    materialization with the row count the stage read."""
    for message in run.messages:
        if message.get("tgmed") != DBT_EVENT:
            continue
        event = DbtCoreCliEventMessage(raw_event=message["event"], event_history_metadata={})
        for result in event.to_default_asset_events(
            manifest=MANIFEST, dagster_dbt_translator=TRANSLATOR, context=context
        ):
            if isinstance(result, Output) and "rows" in message:
                result = result.with_metadata({**result.metadata, "rows": message["rows"]})
            yield result


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_models",
    op_tags={"tgmed/stage": "transform"},
)
def dbt_models(context: AssetExecutionContext, config: DbtConfig, launcher: StageLauncher):
    select, indirect = selection(context)
    run = launcher.launch(context, stages.transform(config.full_refresh, select, indirect))
    counts = run.report.counts
    context.log.info(
        f"dbt: {counts.get('model_success', 0):g} models built, "
        f"{counts.get('test_pass', 0):g} tests passed, {counts.get('test_fail', 0):g} failed"
    )
    yield from dbt_events(context, run)
    if not run.succeeded:
        raise failure(run)
