"""Local mode tells whether a run's worker lives, and marks a run whose worker is gone
FAILURE (issue 30): the dead_run_workers sensor, launch and terminate; a queued launch
says what it waits behind and how that run ended.

Runs here are real runs of a real instance (local mode's dagster.yaml); the run worker's
pid is written with the very engine event Dagster's code server wrote when it started a
run worker (STARTED_EVENT, recorded from a `make demo` run of Dagster 1.13.27, given
this test's run, pid and time); the processes are real processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultRunLauncher,
    EventLogEntry,
    build_sensor_context,
    deserialize_value,
    instance_for_test,
    job,
    op,
)

from tgmed_orchestrator import cli
from tgmed_orchestrator.run_queue import WAREHOUSE_TAG, QueueReport
from tgmed_orchestrator.run_report import RunReporter
from tgmed_orchestrator.run_workers import (
    RunWorker,
    checks_run_workers,
    dead_run_worker,
    fail_dead_runs,
    recorded_run_worker,
    worker_health,
)
from tgmed_orchestrator.sensors import dead_run_workers

ORCHESTRATOR = Path(__file__).parents[1]
# serialized as the code server stored it (dagster/_grpc/impl.py's engine event)
STARTED_EVENT = """{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent",
 "event_specific_data": {"__class__": "EngineEventData", "error": null, "marker_end": null,
  "marker_start": null, "metadata_entries": [{"__class__": "EventMetadataEntry",
  "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "12045"},
  "label": "pid"}]},
 "event_type_value": "ENGINE_EVENT", "logging_tags": {},
 "message": "Started process for run (pid: 12045).", "pid": null,
 "pipeline_name": "telegram_pipeline", "solid_handle": null, "step_handle": null,
 "step_key": null, "step_kind_value": null},
 "error_info": null, "level": 20, "message": "", "pipeline_name": "telegram_pipeline",
 "run_id": "b19a8245-12b6-4287-aad4-ec73f05e096c", "step_key": null,
 "timestamp": 1796649281.5155768, "user_message": ""}"""


@op
def nothing() -> None:
    pass


@job(tags={WAREHOUSE_TAG: "1"})
def warehouse_job() -> None:
    nothing()


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ORCHESTRATOR / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        yield instance


def started_run(instance, pid: int | None):
    run = instance.create_run_for_job(
        warehouse_job, status=DagsterRunStatus.STARTED, tags=warehouse_job.tags
    )
    if pid is not None:
        event = json.loads(STARTED_EVENT)
        event.update(run_id=run.run_id, pipeline_name=run.job_name, timestamp=time.time())
        event["dagster_event"]["pipeline_name"] = run.job_name
        event["dagster_event"]["message"] = f"Started process for run (pid: {pid})."
        data = event["dagster_event"]["event_specific_data"]
        data["metadata_entries"][0]["entry_data"]["text"] = str(pid)
        instance.store_event(deserialize_value(json.dumps(event), EventLogEntry))
    return run


def sensor_says(instance) -> str:
    with build_sensor_context(instance=instance) as context:
        return dead_run_workers(context).skip_message


def test_the_local_instance_checks_its_run_workers(instance):
    assert type(instance.run_launcher) is DefaultRunLauncher
    assert checks_run_workers(instance)
    assert instance.run_monitoring_enabled  # runs stuck STARTING or CANCELING


def test_a_live_run_worker_is_running_and_a_killed_one_failed(instance):
    worker = subprocess.Popen(["sleep", "300"])
    try:
        run = started_run(instance, worker.pid)
        assert recorded_run_worker(instance, run.run_id).pid == worker.pid
        assert dead_run_worker(instance, run) is None
        assert sensor_says(instance) == "every STARTED run's worker is alive"
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        worker.kill()  # not reaped yet: a zombie is dead too
        while Path(f"/proc/{worker.pid}/stat").read_text().split(") ")[1][0] != "Z":
            time.sleep(0.05)  # until the kernel has made it a zombie
        found = dead_run_worker(instance, run)
        assert f"pid {worker.pid}" in found and "exited" in found
        worker.wait()
        assert "no longer exists" in dead_run_worker(instance, run)
        assert sensor_says(instance) == "marked 1 runs FAILURE: their run workers are gone"
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        (failure,) = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_FAILURE
        ).records
        text = failure.event_log_entry.dagster_event.message
        assert "the dead_run_workers sensor" in text and f"pid {worker.pid}" in text
        assert sensor_says(instance) == "every STARTED run's worker is alive"  # once
    finally:
        worker.kill()
        worker.wait()


def test_a_pid_taken_over_by_a_later_process_is_not_the_run_worker():
    process = subprocess.Popen(["sleep", "300"])
    try:
        alive, _ = worker_health(RunWorker(process.pid, time.time()))
        assert alive
        alive, found = worker_health(RunWorker(process.pid, time.time() - 3600))
        assert not alive
        assert "another process now" in found
    finally:
        process.kill()
        process.wait()


def test_a_run_without_a_recorded_worker_is_left_alone(instance):
    run = started_run(instance, None)  # executed in process: nothing to check
    assert dead_run_worker(instance, run) is None
    assert list(fail_dead_runs(instance, "a test")) == []
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED


def test_terminate_fails_a_run_whose_worker_is_gone(instance, capsys):
    worker = subprocess.Popen(["true"])
    worker.wait()
    run = started_run(instance, worker.pid)
    assert cli.main(["terminate", run.run_id[:8]]) == 0
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert "no longer exists" in capsys.readouterr().out
    assert cli.main(["terminate", run.run_id[:8]]) == 2  # nothing left to end


def test_a_queued_run_says_what_it_waits_behind_and_how_that_ended(instance, capsys):
    worker = subprocess.Popen(["sleep", "300"])
    try:
        holder = started_run(instance, worker.pid)
        # Dagster stores a QUEUED run only with a code location's origin (test_submit.py
        # queues real ones); the report reads a run's id, status and tags
        waiting = instance.create_run_for_job(warehouse_job, tags=warehouse_job.tags)
        queued = SimpleNamespace(
            run_id=waiting.run_id, status=DagsterRunStatus.QUEUED, tags=waiting.tags
        )
        reporter = RunReporter(sys.stdout)
        report = QueueReport()
        report.update(instance, queued, reporter)
        line = capsys.readouterr().out
        assert f"queued behind warehouse_job {holder.run_id[:8]} (STARTED since" in line
        assert f"tgmed-orchestrator terminate {holder.run_id[:8]}" in line
        report.update(instance, queued, reporter)  # nothing new: said once a minute
        assert capsys.readouterr().out == ""
        worker.kill()
        worker.wait()
        assert [r.run_id for r, _ in fail_dead_runs(instance, "a test")] == [holder.run_id]
        report.update(instance, queued, reporter)
        out = capsys.readouterr().out
        assert f"warehouse_job {holder.run_id[:8]} ended: FAILURE: " in out
        assert "no longer exists" in out
    finally:
        worker.kill()
        worker.wait()


def test_container_run_workers_are_left_to_run_monitoring_without_building_a_launcher():
    """Kubernetes' instance: its launcher needs in-cluster credentials, which neither this
    machine nor the code location's pod has, so building it would fail every tick."""
    k8s = {
        "module": "dagster_k8s",
        "class": "K8sRunLauncher",
        "config": {
            "instance_config_map": "tgmed-dagster-instance",
            "dagster_home": "/opt/dagster/home",
            "postgres_password_secret": "tgmed-dagster-pg",
            "job_namespace": "tgmed",
            "service_account_name": "tgmed-run-launcher",
        },
    }
    with (
        instance_for_test(overrides={"run_launcher": k8s}) as instance,
        pytest.raises(Exception),  # noqa: B017 - whatever the client raises
    ):
        instance.run_launcher  # noqa: B018 - what a type check would have built
    with instance_for_test(overrides={"run_launcher": k8s}) as instance:
        assert not checks_run_workers(instance)
        assert sensor_says(instance).startswith("run workers are containers")
