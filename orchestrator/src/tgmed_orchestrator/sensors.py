"""Sensors: new lake files start a load; a failed run alerts someone."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import hashlib
import json

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from tgmed_common.lake import Lake
from tgmed_common.settings import LakeSettings, load_settings
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.jobs import load_lake
from tgmed_orchestrator.settings import AlertSettings

# Files are published by rename, which sets their ctime: the cursor keeps the newest
# ctime seen and, for this many seconds before it, the names already seen, so a file
# published a little late (or in the same tick as another) is neither missed nor
# loaded twice.
GRACE_NS = 120 * 1_000_000_000


def lake_record_files(lake: Lake) -> dict[str, int]:
    """Lake-relative path -> publication time (ctime, ns) of every record file the
    loader loads (messages, observations, channel snapshots, detections)."""
    found = {}
    files = [
        *lake.message_files(),
        *lake.observation_files(),
        *lake.snapshot_files(),
        *lake.detection_files(),
    ]
    for path in files:
        try:
            found[lake.relative(path)] = path.stat().st_ctime_ns
        except FileNotFoundError:  # quarantined between listing and stat
            continue
    return found


def new_files(files: dict[str, int], cursor: str | None) -> tuple[list[str], str]:
    """The files not seen before, and the cursor that remembers them."""
    state = json.loads(cursor) if cursor else {"ctime_ns": 0, "recent": []}
    watermark, recent = state["ctime_ns"], set(state["recent"])
    fresh = sorted(
        path for path, ctime in files.items() if ctime > watermark - GRACE_NS and path not in recent
    )
    newest = max([watermark, *files.values()])
    keep = sorted(path for path, ctime in files.items() if ctime >= newest - GRACE_NS)
    return fresh, json.dumps({"ctime_ns": newest, "recent": keep})


@sensor(
    job=load_lake,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="new message or detection files in the lake -> load them and rebuild the marts",
)
def lake_files_sensor(context: SensorEvaluationContext):
    lake = Lake(load_settings(LakeSettings).lake_dir)
    fresh, cursor = new_files(lake_record_files(lake), context.cursor)
    if not fresh:
        context.update_cursor(cursor)
        return SkipReason(f"no new files in {lake.root}")
    digest = hashlib.sha256("\n".join(fresh).encode()).hexdigest()[:16]
    context.update_cursor(cursor)
    return RunRequest(
        run_key=f"lake-{digest}",
        tags={"tgmed/new-files": str(len(fresh)), "tgmed/first-file": fresh[0][:200]},
    )


def failure_text(context: RunFailureSensorContext, ui_url: str) -> tuple[str, str]:
    run = context.dagster_run
    lines = [context.failure_event.message or "the run failed"]
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        error, parts = (data.error if data else None), []
        while error is not None:  # "Exceeded max_retries" is caused by the stage's failure
            parts.append(error.message.strip())
            error = error.cause
        message = "\ncaused by: ".join(parts) or "no error message"
        lines.append(f"\nstep {event.step_key}:\n{message[:1500]}")
    lines.append(f"\n{ui_url.rstrip('/')}/runs/{run.run_id}")
    return f"tgmed: run of {run.job_name} failed ({run.run_id[:8]})", "\n".join(lines)


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="a failed run -> an alert (ALERT_WEBHOOK_URL, ALERT_TELEGRAM_*)",
)
def run_failure_alert_sensor(context: RunFailureSensorContext, alerter: Alerter):
    if not alerter.configured:
        context.log.info("no alert channel configured (ALERT_WEBHOOK_URL, ALERT_TELEGRAM_*)")
        return
    title, text = failure_text(context, AlertSettings().dagster_ui_url)
    sent = alerter.send(
        title, text, {"job": context.dagster_run.job_name, "run_id": context.dagster_run.run_id}
    )
    context.log.info(f"alert sent via {', '.join(sent) or 'no channel (all failed)'}")


SENSORS = [lake_files_sensor, run_failure_alert_sensor]
