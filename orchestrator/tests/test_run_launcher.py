"""Local mode's run launcher tells run monitoring whether a run's worker lives (issue
30), and a queued launch says what it waits behind and how that run ended.

Runs here are real runs of a real instance (local mode's dagster.yaml); the run worker's
pid is written with the very engine event Dagster's code server writes when it starts a
run worker; the processes are real processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op

# the event the code server writes for a run worker (dagster/_grpc/impl.py): a test-only
# private import, to write exactly what production reads
from dagster._core.events import EngineEventData

from tgmed_orchestrator import cli
from tgmed_orchestrator.run_launcher import (
    LocalRunLauncher,
    RunWorker,
    WorkerStatus,
    recorded_run_worker,
    worker_health,
)
from tgmed_orchestrator.run_queue import WAREHOUSE_TAG, QueueReport
from tgmed_orchestrator.run_report import RunReporter

ORCHESTRATOR = Path(__file__).parents[1]


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
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
        )
    return run


def test_the_local_instance_uses_the_launcher(instance):
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled


def test_a_live_run_worker_is_running_and_a_killed_one_failed(instance):
    worker = subprocess.Popen(["sleep", "300"])
    try:
        run = started_run(instance, worker.pid)
        assert recorded_run_worker(instance, run.run_id).pid == worker.pid
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING, health
        worker.kill()  # not reaped yet: a zombie is dead too
        deadline = time.monotonic() + 30
        while Path(f"/proc/{worker.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED, health
        assert f"pid {worker.pid}" in health.msg and "exited" in health.msg
        worker.wait()
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED, health
        assert "no longer exists" in health.msg
        info = instance.run_launcher.get_run_worker_debug_info(run)
        assert run.run_id in info and f"pid {worker.pid}" in info
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
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


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
        health = instance.run_launcher.check_run_worker_health(holder)
        instance.report_run_failed(holder, f"Detected run worker status {health}.")
        report.update(instance, queued, reporter)
        out = capsys.readouterr().out
        assert f"warehouse_job {holder.run_id[:8]} ended: FAILURE: " in out
        assert "no longer exists" in out
    finally:
        worker.kill()
        worker.wait()
