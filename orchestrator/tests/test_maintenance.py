"""The health check (real PostgreSQL, thresholds, alert to a local HTTP server) and
the cleanup job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from dagster import DagsterEventType, DagsterInstance

from tgmed_common.lake import Lake
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.jobs import cleanup
from tgmed_orchestrator.launchers import LocalStageLauncher


def health_run(alerter: Alerter):
    """The pipeline_health job: the monitoring asset, materialized."""
    return defs.resolve_job_def("pipeline_health").execute_in_process(
        resources={"alerter": alerter}, instance=DagsterInstance.ephemeral()
    )


def health_metadata(result) -> dict:
    [event] = [
        e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]
    assert event.asset_key.to_user_string() == "monitoring/pipeline_health"
    return event.event_specific_data.materialization.metadata


def test_health_check_alerts_on_breached_thresholds(
    tmp_path, monkeypatch, fresh_database, alert_server
):
    url = fresh_database("health")
    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    loader = Path(sys.executable).parent / "tgmed-loader"
    subprocess.run([str(loader), "init-db"], check=True, capture_output=True, env=os.environ)
    bad = lake.root / "raw" / "telegram_messages" / "x.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text("nope\n")
    lake.quarantine(bad, "test", stream="telegram_messages")
    monkeypatch.setenv("HEALTH_MAX_QUARANTINED_FILES", "0")
    alerter = Alerter(webhook_url=f"{alert_server.url}/hook")
    result = health_run(alerter)
    assert result.success
    metadata = health_metadata(result)
    assert metadata["rows.raw.telegram_messages"].value == 0
    assert "rows.marts.fct_messages" not in metadata  # dbt never ran here
    assert metadata["problems_found"].value == 2
    assert metadata["quarantined_files"].value == 1
    assert metadata["problems"].value == (
        "- 0 messages loaded, fewer than 1\n- 1 quarantined files (threshold 0)"
    )
    [hook] = [item["json"] for item in alert_server.received]
    assert hook["check"] == "pipeline_health"
    assert "1 quarantined files" in hook["text"]
    assert url not in str(hook)

    # within thresholds: no alert
    monkeypatch.setenv("HEALTH_MIN_MESSAGES", "0")
    monkeypatch.setenv("HEALTH_MAX_QUARANTINED_FILES", "5")
    quiet = health_run(alerter)
    assert health_metadata(quiet)["problems_found"].value == 0
    assert len(alert_server.received) == 1


def test_cleanup_removes_only_old_quarantine_entries_and_temp_files(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    for name in ["old.jsonl", "new.jsonl"]:
        path = lake.root / "raw" / "telegram_messages" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
        lake.quarantine(path, "test", stream="telegram_messages")
    entries = sorted((lake.quarantine_root / "telegram_messages").iterdir())
    old_entry = next(e for e in entries if any(e.rglob("old.jsonl")))
    month_ago = time.time() - 40 * 86400
    os.utime(old_entry, (month_ago, month_ago))
    stale = lake.root / "raw" / "telegram_messages" / ".a.jsonl.tmp-0123456789ab"
    fresh = lake.root / "raw" / "telegram_messages" / ".b.jsonl.tmp-0123456789ab"
    stale.write_text("half")
    fresh.write_text("being written")
    os.utime(stale, (month_ago, month_ago))

    result = cleanup.execute_in_process(
        resources={"launcher": LocalStageLauncher()}, instance=DagsterInstance.ephemeral()
    )
    assert result.output_for_node("cleanup_op") == {
        "quarantine_entries": 1,
        "temp_files": 1,
        "containers": 0,
    }
    assert not old_entry.exists() and not stale.exists()
    assert fresh.exists()
    assert [p.name for p in lake.quarantined()] == ["new.jsonl.reason.json"]


def test_freshness_check_of_the_newest_post_per_channel(tmp_path, monkeypatch, fresh_database):
    """The check on raw/telegram_messages: each channel's newest post against
    HEALTH_MAX_POST_AGE_HOURS (configuration), the stale ones named."""
    from dagster import build_asset_check_context

    from tgmed_orchestrator.assets.raw import newest_post_per_channel

    url = fresh_database("freshness")
    monkeypatch.setenv("DATABASE_URL", url)
    loader = Path(sys.executable).parent / "tgmed-loader"
    subprocess.run([str(loader), "init-db"], check=True, capture_output=True, env=os.environ)
    with psycopg.connect(url) as conn:
        for channel, hours in [("fresh_one", 2), ("stale_one", 100)]:
            conn.execute(
                "insert into raw.telegram_messages (channel_username, message_id, message_date,"
                " scraped_at, record, source_file) values (%s, 1, now() - make_interval("
                "hours => %s), now(), '{}', 'x')",
                [channel, hours],
            )
    monkeypatch.setenv("HEALTH_MAX_POST_AGE_HOURS", "48")
    result = newest_post_per_channel(build_asset_check_context())
    assert not result.passed
    assert result.metadata["stale_channels"].value == 1
    assert result.metadata["threshold_hours"].value == 48
    assert "stale_one" in result.metadata["stale"].value
    assert "fresh_one" not in result.metadata["stale"].value
    monkeypatch.setenv("HEALTH_MAX_POST_AGE_HOURS", "200")
    assert newest_post_per_channel(build_asset_check_context()).passed
