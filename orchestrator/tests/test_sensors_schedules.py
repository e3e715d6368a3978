"""Sensors and schedules evaluated with Dagster's test contexts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from tgmed_common.lake import Lake
from tgmed_orchestrator.planning import CHANNELS
from tgmed_orchestrator.schedules import (
    telegram_pipeline_schedule,
    weekly_full_refresh_schedule,
)
from tgmed_orchestrator.sensors import (
    GRACE_NS,
    channel_partitions_sensor,
    lake_files_sensor,
    new_files,
)


def write(lake: Lake, stream: str, name: str) -> str:
    path = lake.root / "raw" / stream / "date=2026-11-01" / "channel=chemed123" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n", encoding="utf-8")
    return lake.relative(path)


def evaluate(cursor: str | None, instance) -> tuple[object, str]:
    context = build_sensor_context(cursor=cursor, instance=instance)
    result = lake_files_sensor(context)
    return result, context.cursor


def test_lake_sensor_requests_one_run_per_new_set_of_files(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    instance = DagsterInstance.ephemeral()

    result, cursor = evaluate(None, instance)
    assert isinstance(result, SkipReason)  # an empty lake

    first = {
        write(lake, "telegram_messages", "a-000.jsonl"),
        write(lake, "yolo_detections", "d-000.jsonl"),
    }
    (lake.root / "raw" / "telegram_messages" / ".x.jsonl.tmp-123").write_text("half")
    result, cursor = evaluate(cursor, instance)
    assert isinstance(result, RunRequest)
    assert result.tags["tgmed/new-files"] == "2"  # the temporary file is not one
    assert set(json.loads(cursor)["recent"]) == first

    # the same files again: no run (the cursor remembers them)
    again, same_cursor = evaluate(cursor, instance)
    assert isinstance(again, SkipReason)
    assert json.loads(same_cursor) == json.loads(cursor)

    # one more file (its ctime may equal the first files' on a fast machine: the cursor
    # also remembers names): a run for it alone, under another run key
    write(lake, "telegram_messages", "b-000.jsonl")
    later, cursor = evaluate(cursor, instance)
    assert isinstance(later, RunRequest)
    assert later.tags["tgmed/new-files"] == "1"
    assert later.tags["tgmed/first-file"].endswith("b-000.jsonl")
    assert later.run_key != result.run_key


def test_cursor_logic_late_and_old_files():
    second = 1_000_000_000
    files = {"a": 100 * second, "b": 200 * second}
    fresh, cursor = new_files(files, None)
    assert fresh == ["a", "b"]
    # published a little late, with an older time than the newest seen: still found once
    files["late"] = 200 * second - GRACE_NS // 2
    fresh, cursor = new_files(files, cursor)
    assert fresh == ["late"]
    fresh, cursor = new_files(files, cursor)
    assert fresh == []
    # far older than the watermark: taken as seen (the cursor stays small)
    files["ancient"] = 1 * second
    assert new_files(files, cursor)[0] == []
    assert "ancient" not in json.loads(cursor)["recent"]


def test_daily_schedule_runs_the_pipeline_once_per_day():
    when = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    request = telegram_pipeline_schedule(build_schedule_context(scheduled_execution_time=when))
    assert request.run_key == "daily-2026-11-22"
    assert request.tags["tgmed/schedule"] == "daily"
    assert telegram_pipeline_schedule.cron_schedule == "0 2 * * *"


def test_weekly_schedule_rebuilds_the_marts_in_full():
    when = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # a Sunday
    request = weekly_full_refresh_schedule(build_schedule_context(scheduled_execution_time=when))
    assert request.run_key == "weekly-2026-11-22"
    assert request.run_config == {"ops": {"dbt_models": {"config": {"full_refresh": True}}}}
    assert weekly_full_refresh_schedule.cron_schedule == "0 3 * * 0"


def test_the_lake_sensor_skips_files_the_pipeline_itself_loaded(tmp_path, monkeypatch):
    """A run that wrote files and loaded them recorded, on the raw table's
    materialization, when it listed the lake: those files start no other load; a file
    published after that does."""
    from dagster import AssetMaterialization

    from tgmed_orchestrator.assets.raw import LISTED_AT

    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    instance = DagsterInstance.ephemeral()
    _, cursor = evaluate(None, instance)
    write(lake, "telegram_messages", "a-000.jsonl")
    write(lake, "yolo_detections", "d-000.jsonl")
    time.sleep(0.01)  # past the filesystem's coarse ctime clock (a slower machine only adds)
    listed_at = time.time_ns()

    # what the pipeline's load steps record (assets/raw.py)
    for key in (["raw", "telegram_messages"], ["raw", "yolo_detections"]):
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, metadata={LISTED_AT: listed_at})
        )
    result, cursor = evaluate(cursor, instance)
    assert isinstance(result, SkipReason)
    assert "already" in result.skip_message
    time.sleep(0.01)
    write(lake, "telegram_messages", "b-000.jsonl")  # written by someone else, later
    later, cursor = evaluate(cursor, instance)
    assert isinstance(later, RunRequest)
    assert later.tags["tgmed/new-files"] == "1"
    assert later.tags["tgmed/first-file"].endswith("b-000.jsonl")


def test_configured_channels_become_partitions(tmp_path, monkeypatch):
    """The channels file (one parser: inline comments stripped) becomes partitions; the
    shipped default list when no file is configured."""
    instance = DagsterInstance.ephemeral()
    monkeypatch.chdir(tmp_path)  # no config/ here: the default list still exists
    monkeypatch.setenv("TGMED_SCRAPE_SOURCE", "telegram")
    monkeypatch.delenv("TGMED_CHANNELS_FILE", raising=False)
    result = channel_partitions_sensor(build_sensor_context(instance=instance))
    [request] = result.dynamic_partitions_requests
    assert request.partitions_def_name == CHANNELS.name
    assert list(request.partition_keys) == ["chemed123", "lobelia4cosmetics", "tikvahpharma"]
    instance.add_dynamic_partitions(CHANNELS.name, list(request.partition_keys))
    channels = tmp_path / "channels.txt"
    channels.write_text("# ours\nCheMed123  # the first\nnewpharma # added\n\n")
    monkeypatch.setenv("TGMED_CHANNELS_FILE", str(channels))
    result = channel_partitions_sensor(build_sensor_context(instance=instance))
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["newpharma"]


def test_schedule_run_configs_fit_their_jobs():
    """The weekly full refresh's run config is valid for the transform job's dbt step."""
    from dagster import validate_run_config

    from tgmed_orchestrator.definitions import defs

    when = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    request = weekly_full_refresh_schedule(build_schedule_context(scheduled_execution_time=when))
    assert validate_run_config(defs.resolve_job_def("transform"), request.run_config)


def test_status_shows_a_schedule_turned_on_by_dagster_itself(tmp_path, monkeypatch, capsys):
    """`tgmed-orchestrator status` reads the state `dagster schedule start` stores (the
    UI's switch stores the same), by kind and name, through Dagster's public API."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tgmed_orchestrator import cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "local")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).with_name("dagster")
    module = ["-m", "tgmed_orchestrator.definitions", "-a", "defs"]
    started = subprocess.run(
        [str(dagster), "schedule", "start", "weekly_full_refresh_schedule", *module],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=180,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    assert cli.status() == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert "RUNNING" in rows["weekly_full_refresh_schedule"]
    assert "(default)" not in rows["weekly_full_refresh_schedule"]
    assert "(default)" in rows["telegram_pipeline_schedule"]
    assert rows["lake_files_sensor"].startswith("sensor")
