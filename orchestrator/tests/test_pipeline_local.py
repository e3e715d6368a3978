"""telegram_pipeline in local mode, end to end on the sample: the real stage CLIs as
processes (the yolo stage from its own environment with the shared model), a real
PostgreSQL, real dbt; then the Dagster UI (webserver over the same instance) shows
the runs. A second run adds nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance

from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.cli import check_ui
from tgmed_orchestrator.jobs import telegram_pipeline
from tgmed_orchestrator.launchers import LocalStageLauncher

from .conftest import make_sample

TABLES = [
    "raw.telegram_messages",
    "raw.yolo_detections",
    "marts.fct_messages",
    "marts.fct_images",
    "marts.fct_image_detections",
    "marts.fct_product_mentions",
    "marts.fct_product_prices",
    "marts.dim_channels",
]


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}  # noqa: S608


def step_metadata(result) -> dict[str, dict]:
    return {
        event.step_key: event.event_specific_data.metadata
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_OUTPUT
    }


@pytest.fixture(scope="module")
def pipeline(yolo_bin, fresh_database, tmp_path_factory):
    folder, model = yolo_bin
    root = tmp_path_factory.mktemp("orchestrated")
    exports = make_sample(root / "sample")
    url = fresh_database("orchestrated")
    home = root / "dagster"
    home.mkdir()
    env = {
        "LAKE_DIR": str(root / "lake"),
        "DATABASE_URL": url,
        "DETECT_MODEL": model,
        "DBT_TARGET_PATH": str(root / "dbt-target"),
        "DBT_LOG_PATH": str(root / "dbt-target" / "logs"),
        "TGMED_SCRAPE_SOURCE": "export",
        "TGMED_EXPORT_ROOT": str(exports),
    }
    resources = {
        "launcher": LocalStageLauncher(bin_dirs={"detect": folder}),
        "alerter": Alerter(),
    }
    run_config = {"ops": {"plan_detect_op": {"config": {"shards": 2}}}}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with DagsterInstance.local_temp(str(home)) as instance:
            first = telegram_pipeline.execute_in_process(
                run_config=run_config, resources=resources, instance=instance
            )
            after_first = counts(url)
            second = telegram_pipeline.execute_in_process(
                run_config=run_config, resources=resources, instance=instance
            )
            after_second = counts(url)
        yield {
            "first": first,
            "second": second,
            "counts": (after_first, after_second),
            "home": home,
            "env": env,
        }


def test_pipeline_fills_the_marts_and_reports_every_stage(pipeline):
    first = pipeline["first"]
    assert first.success
    rows, _ = pipeline["counts"]
    for table in TABLES:
        assert rows[table] > 0, table
    metadata = step_metadata(first)
    channels = {"chemed123", "lobelia4cosmetics", "tikvahpharma"}
    assert {k for k in metadata if k.startswith("scrape_op[")} == {
        f"scrape_op[{c}]" for c in channels
    }
    imported = sum(metadata[f"scrape_op[{c}]"]["messages"].value for c in channels)
    assert imported == rows["raw.telegram_messages"]
    detected = [metadata[f"detect_op[shard_{i}]"] for i in range(2)]
    assert sum(m["images"].value for m in detected) == rows["raw.yolo_detections"]
    assert all(m["images"].value > 0 for m in detected)  # both shards had work
    assert metadata["load_messages_op"]["rows"].value == rows["raw.telegram_messages"]
    assert metadata["load_detections_op"]["rows"].value == rows["raw.yolo_detections"]
    assert metadata["init_db_op"]["summary"].value["stage"] == "init-db"
    dbt = metadata["transform_op"]
    assert dbt["success"].value is True
    assert dbt["counts.test_pass"].value >= 60
    assert "counts.test_fail" not in dbt
    for step in metadata.values():
        if "command" in step:
            assert step["exit_code"].value == 0


def test_second_run_adds_nothing(pipeline):
    second = pipeline["second"]
    assert second.success
    before, after = pipeline["counts"]
    assert before == after
    metadata = step_metadata(second)
    assert all(
        metadata[key]["messages"].value == 0 for key in metadata if key.startswith("scrape_op[")
    )
    assert sum(metadata[f"detect_op[shard_{i}]"]["images"].value for i in range(2)) == 0
    assert metadata["load_messages_op"]["rows"].value == 0
    assert metadata["load_detections_op"]["rows"].value == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dagster_ui_shows_the_finished_runs(pipeline, capsys):
    """The webserver over the runs' instance answers, and its GraphQL API (what the UI
    reads) lists both runs as SUCCESS."""
    port = free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    env = {**os.environ, **pipeline["env"], "DAGSTER_HOME": str(pipeline["home"])}
    process = subprocess.Popen(
        [
            str(webserver),
            "-m",
            "tgmed_orchestrator.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        code = check_ui(f"http://127.0.0.1:{port}", "telegram_pipeline", wait_seconds=120)
        shown = capsys.readouterr().out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert code == 0, process.stderr.read().decode()[-2000:] if process.stderr else ""
    for result in (pipeline["first"], pipeline["second"]):
        assert f"telegram_pipeline {result.run_id} SUCCESS" in shown
