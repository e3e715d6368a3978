"""The code location loads, and every asset, check, job, schedule and sensor is what it
should be."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    Backoff,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
)

from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.jobs import STAGE_RETRY_POLICY, stage_retry_policy
from tgmed_orchestrator.launchers import LocalStageLauncher

from .conftest import readme_dbt_test_count

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tgmed_orchestrator"
ROOT = PACKAGE.parents[2]
MANIFEST = json.loads((PACKAGE / "dbt_manifest.json").read_text())
DBT_NODES = {
    uid: node
    for uid, node in MANIFEST["nodes"].items()
    if node["resource_type"] in {"model", "seed"}
}
DBT_MODELS = sorted(n["name"] for n in DBT_NODES.values() if n["resource_type"] == "model")
DBT_KEYS = {f"{n['schema']}/{n.get('alias') or n['name']}" for n in DBT_NODES.values()}


def key(text: str) -> AssetKey:
    return AssetKey.from_user_string(text)


def graph():
    return defs.resolve_asset_graph()


def test_definitions_load_with_every_job_schedule_and_sensor():
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert jobs == {
        "telegram_pipeline",
        "scrape_and_load",
        "transform",
        "enrich",
        "load_lake",
        "pipeline_health",
        "cleanup",
    }
    schedules = {s.name: s for s in repo.schedule_defs}
    assert {n: (s.cron_schedule, s.job_name) for n, s in schedules.items()} == {
        "telegram_pipeline_schedule": ("0 2 * * *", "telegram_pipeline"),
        "weekly_full_refresh_schedule": ("0 3 * * 0", "transform"),
        "cleanup_schedule": ("30 3 * * 0", "cleanup"),
        "pipeline_health_schedule": ("0 * * * *", "pipeline_health"),
    }
    assert all(s.execution_timezone == "UTC" for s in schedules.values())
    assert all(s.default_status == DefaultScheduleStatus.STOPPED for s in schedules.values())
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == {
        "lake_files_sensor",
        "run_failure_alert_sensor",
        "channel_partitions_sensor",
        "dead_run_workers",
    }
    assert sensors["dead_run_workers"].default_status == DefaultSensorStatus.RUNNING
    assert [t.job_name for t in sensors["lake_files_sensor"].targets] == ["load_lake"]
    assert sensors["run_failure_alert_sensor"].default_status == DefaultSensorStatus.RUNNING
    assert isinstance(defs.resources["launcher"], LocalStageLauncher)
    assert "alerter" in defs.resources


def test_the_catalog_holds_the_lake_the_raw_tables_every_dbt_model_and_the_health():
    asset_graph = graph()
    keys = {k.to_user_string() for k in asset_graph.get_all_asset_keys()}
    lake = {
        "lake/telegram_messages",
        "lake/telegram_media",
        "lake/yolo_detections",
        "lake/message_extractions",
    }
    raw = {
        "raw/telegram_messages",
        "raw/telegram_message_observations",
        "raw/telegram_channel_snapshots",
        "raw/yolo_detections",
        "raw/message_extractions",
    }
    dbt = DBT_KEYS
    # every model file and seed of the dbt project is an asset
    project = Path(__file__).parents[2] / "dbt"
    models = {p.stem for p in (project / "models").rglob("*.sql")}
    seeds = {p.stem for p in (project / "seeds").glob("*.csv")}
    assert set(DBT_MODELS) == models and len(dbt) == len(models) + len(seeds)
    assert keys == lake | raw | dbt | {"monitoring/pipeline_health"}
    groups = {
        k.to_user_string(): asset_graph.get(k).group_name for k in asset_graph.get_all_asset_keys()
    }
    assert {groups[k] for k in lake} == {"lake"}
    assert {groups[k] for k in raw} == {"raw"}
    assert groups["staging/stg_telegram_messages"] == "staging"
    assert groups["staging/int_message_extractions"] == "intermediate"
    assert groups["marts/fct_messages"] == "marts"
    assert groups["marts/coco_product_classes"] == "seeds"
    assert groups["monitoring/pipeline_health"] == "monitoring"
    # channels are dynamic partitions of the lake's messages and photos
    for name in ("lake/telegram_messages", "lake/telegram_media"):
        partitions = asset_graph.get(key(name)).partitions_def
        assert isinstance(partitions, DynamicPartitionsDefinition) and partitions.name == "channels"


def upstream(name: str) -> set[str]:
    return {k.to_user_string() for k in graph().get(key(name)).parent_keys}


def test_lineage_runs_from_the_channel_partitions_to_the_marts():
    assert upstream("raw/telegram_messages") == {"lake/telegram_messages", "lake/telegram_media"}
    assert upstream("lake/yolo_detections") == {"lake/telegram_media"}
    assert upstream("raw/yolo_detections") == {"lake/yolo_detections"}
    assert upstream("lake/message_extractions") == {"lake/telegram_messages"}
    assert upstream("raw/message_extractions") == {"lake/message_extractions"}
    assert upstream("staging/stg_message_extractions") == {"raw/message_extractions"}
    assert upstream("staging/stg_telegram_messages") == {"raw/telegram_messages"}
    assert upstream("staging/stg_yolo_detections") == {"raw/yolo_detections"}
    assert "staging/stg_telegram_messages" in upstream("marts/fct_messages")
    # the marts reach the channel partitions through the graph
    for mart, source in [
        ("marts/fct_messages", "lake/telegram_messages"),
        ("marts/dim_channels", "lake/telegram_messages"),
        ("marts/fct_product_prices", "lake/telegram_messages"),
        ("marts/fct_product_prices", "lake/message_extractions"),
        ("marts/rpt_product_candidates", "lake/message_extractions"),
        ("marts/fct_image_detections", "lake/yolo_detections"),
    ]:
        assert source in ancestors(mart), mart


def ancestors(name: str) -> set[str]:
    asset_graph, seen, todo = graph(), set(), [key(name)]
    while todo:
        current = todo.pop()
        for parent in asset_graph.get(current).parent_keys:
            if parent.to_user_string() not in seen:
                seen.add(parent.to_user_string())
                todo.append(parent)
    return seen


def test_every_dbt_data_test_is_a_check_on_what_it_tests():
    asset_graph = graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in asset_graph.asset_check_keys}
    data_tests = [n for n in MANIFEST["nodes"].values() if n["resource_type"] == "test"]
    dbt_checks = {name for _, name in checks} & {n["name"] for n in data_tests}
    assert len(dbt_checks) == len(data_tests) == readme_dbt_test_count()[0]
    assert ("marts/fct_messages", "unique_fct_messages_message_key") in checks
    # a source's test is a check on the raw table it tests (the load stage's asset)
    assert ("raw/telegram_messages", "source_not_null_raw_telegram_messages_message_id") in checks
    # unit tests are no checks (dagster-dbt reads none of their results)
    assert not {name for _, name in checks if name.startswith("unit_")}
    assert ("raw/telegram_messages", "no_quarantined_files") in checks
    assert ("raw/yolo_detections", "no_quarantined_files") in checks
    assert ("raw/message_extractions", "no_quarantined_files") in checks
    assert ("lake/message_extractions", "nothing_set_aside") in checks
    assert ("raw/telegram_messages", "newest_post_per_channel") in checks


@pytest.mark.parametrize(
    ("name", "selected"),
    [
        (
            "scrape_and_load",
            {
                "lake/telegram_messages",
                "lake/telegram_media",
                "raw/telegram_messages",
                "raw/telegram_message_observations",
                "raw/telegram_channel_snapshots",
            },
        ),
        (
            "enrich",
            {
                "lake/yolo_detections",
                "raw/yolo_detections",
                "lake/message_extractions",
                "raw/message_extractions",
            },
        ),
        ("pipeline_health", {"monitoring/pipeline_health"}),
    ],
)
def test_jobs_are_asset_selections(name, selected):
    job = defs.resolve_job_def(name)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == selected


def test_pipeline_transform_and_load_lake_selections():
    everything = {k.to_user_string() for k in graph().get_all_asset_keys()}
    dbt = DBT_KEYS

    def selected(job: str) -> set[str]:
        return {
            k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.executable_asset_keys
        }

    assert selected("telegram_pipeline") == everything - {"monitoring/pipeline_health"}
    assert selected("transform") == dbt
    raw = {k for k in everything if k.startswith("raw/")}
    assert len(raw) == 5
    assert selected("load_lake") == dbt | raw | {"lake/message_extractions"}
    for job in ("telegram_pipeline", "scrape_and_load", "transform", "enrich", "load_lake"):
        assert defs.resolve_job_def(job).tags["tgmed/warehouse"] == "write"


def test_every_stage_step_retries_with_backoff():
    assert STAGE_RETRY_POLICY.max_retries >= 1
    assert STAGE_RETRY_POLICY.backoff == Backoff.EXPONENTIAL
    assert STAGE_RETRY_POLICY.delay > 0
    for name in ["telegram_pipeline", "scrape_and_load", "transform", "enrich", "load_lake"]:
        job = defs.resolve_job_def(name)
        assert job.op_retry_policy == STAGE_RETRY_POLICY, name
        for node in job.graph.nodes:  # no step overrides the job's policy
            own = node.retry_policy or getattr(node.definition, "retry_policy", None)
            assert own in (None, STAGE_RETRY_POLICY), node.name


def test_retry_settings_are_read_through_the_settings_class_and_dotenv(tmp_path, monkeypatch):
    """TGMED_STAGE_RETRIES in .env counts (it was read from os.environ alone)."""
    monkeypatch.delenv("TGMED_STAGE_RETRIES", raising=False)
    monkeypatch.delenv("TGMED_STAGE_RETRY_DELAY_SECONDS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TGMED_STAGE_RETRIES=5\nTGMED_STAGE_RETRY_DELAY_SECONDS=7\n")
    policy = stage_retry_policy()
    assert (policy.max_retries, policy.delay) == (5, 7)


def test_every_tgmed_variable_goes_through_the_settings_class():
    """No TGMED_* (or ALERT_*, HEALTH_*) variable is read from os.environ directly."""
    pattern = re.compile(r"""(os\.environ|getenv)\W+["'](TGMED|ALERT|HEALTH|CLEANUP)_""")
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not pattern.search(text), f"{path.name} reads a setting from os.environ"
        assert (
            "TGMED_IMAGE_" not in text.replace("TGMED_IMAGE_TAG", "") or path.name == "settings.py"
        )


def test_orchestrator_never_imports_a_stage():
    stages = {"tgmed_scraper", "tgmed_loader", "tgmed_transform", "tgmed_yolo", "dbt", "torch"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in stages, f"{path.name} imports {name}"


def test_the_dbt_manifest_is_current():
    """dbt_manifest.json is what `tgmed-transform manifest` reads from the project now
    (after changing dbt models: make dbt-manifest)."""
    from tgmed_transform.manifest import manifest_text

    assert json.loads(manifest_text()) == MANIFEST, "run `make dbt-manifest`"


def test_the_recorded_asset_graph_has_every_asset_and_check_the_code_location_defines():
    """deploy/asset_parity.json (what the UI showed after the sample's first run, compared
    by the local, compose and Kubernetes end-to-end runs) names exactly the assets and
    checks of these definitions: a change to the graph is recorded with it, here first."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
    import asset_parity

    recorded = asset_parity.recorded()
    graph = defs.resolve_asset_graph()
    assert set(recorded) == {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {(asset, check) for asset, checks in recorded.items() for check in checks} == {
        (key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys
    }


def test_loading_the_code_location_imports_no_dbt():
    """The code location reads dbt's manifest and never runs dbt: loading it imports no
    dbt module, also where dbt-core shares the environment (local mode), as in its
    image (a process per run and step loads it: dbt would cost each 1.1 s)."""
    import subprocess
    import sys

    code = (
        "import sys, tgmed_orchestrator.definitions as d;"
        "from tgmed_orchestrator.assets.dbt import dbt_models as m;"
        "print(len(m.keys), len(m.check_keys),"
        " sorted(n for n in sys.modules if n == 'dbt' or n.startswith('dbt.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE
    )
    assert done.stdout.split() == ["34", "241", "[]"], done.stdout + done.stderr
