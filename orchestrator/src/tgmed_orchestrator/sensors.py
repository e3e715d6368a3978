"""Sensors: new lake files start a load (unless a run already loaded them); the channels
file's channels become partitions; a failed run alerts someone; a run whose worker
process died is marked FAILURE (local mode)."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import hashlib
import json

from dagster import (
    AssetKey,
    DagsterInstance,
    DefaultSensorStatus,
    Failure,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from tgmed_common.lake import Lake
from tgmed_common.settings import LakeSettings, load_settings
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.assets.raw import (
    LISTED_AT,
    RAW_DETECTIONS,
    RAW_EXTRACTIONS,
    RAW_MESSAGES,
    RAW_OBSERVATIONS,
    RAW_SNAPSHOTS,
)
from tgmed_orchestrator.jobs import load_lake
from tgmed_orchestrator.outcomes import error_texts
from tgmed_orchestrator.planning import CHANNELS, ScrapeConfig, plan
from tgmed_orchestrator.run_workers import checks_run_workers, fail_dead_runs
from tgmed_orchestrator.settings import alert_settings, orchestrator_settings

# Files are published by rename, which sets their ctime: the cursor keeps the newest
# ctime seen and, for this many seconds before it, the names already seen, so a file
# published a little late (or in the same tick as another) is neither missed nor
# loaded twice.
GRACE_NS = 120 * 1_000_000_000


def lake_record_files(lake: Lake) -> dict[str, int]:
    """Lake-relative path -> publication time (ctime, ns) of every record file the
    loader loads (messages, observations, channel snapshots, detections, extractions)."""
    found = {}
    files = [
        *lake.message_files(),
        *lake.observation_files(),
        *lake.snapshot_files(),
        *lake.detection_files(),
        *lake.extraction_files(),
    ]
    for path in files:
        try:
            found[lake.relative(path)] = path.stat().st_ctime_ns
        except FileNotFoundError:  # quarantined between listing and stat
            continue
    return found


# the raw table each stream's files load into; the load step records, as the metadata
# `lake_listed_at_ns`, a time before the loader listed the lake: every file published
# before it was loaded (or set aside) by that run
STREAM_TABLES = {
    "raw/telegram_messages/": RAW_MESSAGES,
    "raw/telegram_message_observations/": RAW_OBSERVATIONS,
    "raw/telegram_channel_snapshots/": RAW_SNAPSHOTS,
    "raw/yolo_detections/": RAW_DETECTIONS,
    "raw/message_extractions/": RAW_EXTRACTIONS,
}


def loaded_watermarks(instance: DagsterInstance) -> dict[AssetKey, int]:
    """Per raw table: the time before which its latest load saw every lake file."""
    marks = {}
    for key in STREAM_TABLES.values():
        event = instance.get_latest_materialization_event(key)
        materialization = event.asset_materialization if event else None
        value = materialization.metadata.get(LISTED_AT) if materialization else None
        if value is not None:
            marks[key] = int(value.value)
    return marks


def not_loaded(files: dict[str, int], fresh: list[str], marks: dict[AssetKey, int]) -> list[str]:
    """The new files no load has seen yet (the pipeline's own runs load what they write:
    their files must not start another load)."""
    left = []
    for path in fresh:
        table = next((t for prefix, t in STREAM_TABLES.items() if path.startswith(prefix)), None)
        if table is None or files[path] >= marks.get(table, 0):
            left.append(path)
    return left


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
    files = lake_record_files(lake)
    fresh, cursor = new_files(files, context.cursor)
    if not fresh:
        context.update_cursor(cursor)
        return SkipReason(f"no new files in {lake.root}")
    unloaded = not_loaded(files, fresh, loaded_watermarks(context.instance))
    if not unloaded:
        context.update_cursor(cursor)
        return SkipReason(f"{len(fresh)} new files, all loaded already by the run that wrote them")
    fresh = unloaded
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
        # "Exceeded max_retries" is caused by the stage's failure: each error of the chain
        parts = error_texts(data.error if data else None)
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
    title, text = failure_text(context, alert_settings().dagster_ui_url)
    sent = alerter.send(
        title, text, {"job": context.dagster_run.job_name, "run_id": context.dagster_run.run_id}
    )
    context.log.info(f"alert sent via {', '.join(sent) or 'no channel (all failed)'}")


@sensor(
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="the configured channels (TGMED_CHANNELS_FILE or the shipped list; export "
    "folders when TGMED_SCRAPE_SOURCE=export) become channel partitions",
)
def channel_partitions_sensor(context: SensorEvaluationContext):
    try:
        planned = plan(orchestrator_settings(), ScrapeConfig(), None)
    except Failure as error:
        return SkipReason(f"no channels: {error.description}")
    known = set(context.instance.get_dynamic_partitions(CHANNELS.name))
    new = [name for name in planned.channels if name not in known]
    if not new:
        return SkipReason(f"all {len(planned.channels)} channels are partitions")
    return SensorResult(dynamic_partitions_requests=[CHANNELS.build_add_request(new)])


@sensor(
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="a STARTED run whose run worker process is gone (the platform killed, a "
    "reboot) -> marked FAILURE, so it neither holds the warehouse queue nor hides (local "
    "mode; Docker and Kubernetes run monitoring checks their containers)",
)
def dead_run_workers(context: SensorEvaluationContext):
    if not checks_run_workers(context.instance):
        return SkipReason("run workers are containers: Dagster's run monitoring checks them")
    failed = list(fail_dead_runs(context.instance, "the dead_run_workers sensor"))
    for run, found in failed:
        context.log.warning(f"{run.job_name} {run.run_id[:8]}: FAILURE: {found}")
    if not failed:
        return SkipReason("every STARTED run's worker is alive")
    return SkipReason(f"marked {len(failed)} runs FAILURE: their run workers are gone")


SENSORS = [
    lake_files_sensor,
    run_failure_alert_sensor,
    channel_partitions_sensor,
    dead_run_workers,
]
