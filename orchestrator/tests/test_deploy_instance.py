"""The compose instance configuration (orchestrator/deploy/dagster.yaml) loads, and its
dagster-postgres storage works against a real PostgreSQL: a run is recorded there."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
from dagster import DagsterInstance, job, op

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@op
def hello() -> int:
    return 1


@job
def tiny():
    hello()


def test_compose_instance_stores_runs_in_postgres(tmp_path, monkeypatch, fresh_database):
    url = fresh_database("dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", url)  # the embedded server: a unix socket
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "docker")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:  # what the webserver and daemon open
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        result = tiny.execute_in_process(instance=instance)
        assert result.success
    with psycopg.connect(url) as conn:
        stored = conn.execute("select run_id, status from runs").fetchall()
    assert stored == [(result.run_id, "SUCCESS")]
