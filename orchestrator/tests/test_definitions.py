"""The code location loads, and every job, schedule and sensor is what it should be."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from dagster import Backoff, DefaultScheduleStatus, DefaultSensorStatus
from dagster._core.definitions.dependency import NodeHandle

from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.jobs import STAGE_RETRY_POLICY
from tgmed_orchestrator.launchers import LocalStageLauncher

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tgmed_orchestrator"


def upstream(job, node: str) -> dict[str, set[str]]:
    """input name -> the nodes feeding it."""
    deps = job.graph.dependency_structure.input_to_upstream_outputs_for_node(node)
    return {handle.input_name: {out.node_name for out in outs} for handle, outs in deps.items()}


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
    assert set(sensors) == {"lake_files_sensor", "run_failure_alert_sensor"}
    assert [t.job_name for t in sensors["lake_files_sensor"].targets] == ["load_lake"]
    assert sensors["run_failure_alert_sensor"].default_status == DefaultSensorStatus.RUNNING
    # local mode by default, its resources bound
    assert isinstance(defs.resources["launcher"], LocalStageLauncher)
    assert "alerter" in defs.resources


def test_telegram_pipeline_graph():
    job = defs.get_job_def("telegram_pipeline")
    assert {n.name for n in job.graph.nodes} == {
        "plan_scrape_op",
        "scrape_op",
        "init_db_op",
        "load_messages_op",
        "plan_detect_op",
        "detect_op",
        "load_detections_op",
        "transform_op",
    }
    assert upstream(job, "scrape_op") == {"item": {"plan_scrape_op"}}
    assert upstream(job, "load_messages_op") == {"scraped": {"scrape_op"}, "ready": {"init_db_op"}}
    assert upstream(job, "plan_detect_op") == {"scraped": {"scrape_op"}}
    assert upstream(job, "detect_op") == {"item": {"plan_detect_op"}}
    assert upstream(job, "load_detections_op") == {
        "detected": {"detect_op"},
        "after": {"load_messages_op"},
    }
    assert upstream(job, "transform_op") == {"after": {"load_detections_op"}}
    structure = job.graph.dependency_structure
    # fan-out per channel and per shard, fanned back in before the loads
    assert structure.is_dynamic_mapped("scrape_op")
    assert structure.is_dynamic_mapped("detect_op")
    for node, name in [("load_messages_op", "scraped"), ("load_detections_op", "detected")]:
        node_input = job.graph.node_named(node).get_input(name)
        assert structure.has_dynamic_fan_in_dep(node_input)


@pytest.mark.parametrize(
    ("name", "edges"),
    [
        (
            "scrape_and_load",
            {
                "scrape_op": {"item": {"plan_scrape_op"}},
                "load_messages_op": {"scraped": {"scrape_op"}, "ready": {"init_db_op"}},
            },
        ),
        ("transform", {"transform_op": {}}),
        (
            "enrich",
            {
                "detect_op": {"item": {"plan_detect_op"}},
                "load_detections_op": {"detected": {"detect_op"}, "after": {"init_db_op"}},
            },
        ),
        (
            "load_lake",
            {
                "load_messages_op": {"ready": {"init_db_op"}},
                "load_detections_op": {"after": {"load_messages_op"}},
                "transform_op": {"after": {"load_detections_op"}},
            },
        ),
        ("pipeline_health", {"pipeline_health_op": {}}),
        ("cleanup", {"cleanup_op": {}}),
    ],
)
def test_other_jobs_graphs(name, edges):
    job = defs.get_job_def(name)
    nodes = {n.name for n in job.graph.nodes}
    assert set(edges) <= nodes
    for node, inputs in edges.items():
        assert upstream(job, node) == inputs, node


def test_every_stage_op_retries_with_backoff():
    assert STAGE_RETRY_POLICY.max_retries >= 1
    assert STAGE_RETRY_POLICY.backoff == Backoff.EXPONENTIAL
    assert STAGE_RETRY_POLICY.delay > 0
    for name in ["telegram_pipeline", "scrape_and_load", "transform", "enrich", "load_lake"]:
        job = defs.get_job_def(name)
        for node in job.graph.nodes:
            handle = NodeHandle(node.name, None)
            assert job.get_retry_policy_for_handle(handle) == STAGE_RETRY_POLICY, node.name


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
