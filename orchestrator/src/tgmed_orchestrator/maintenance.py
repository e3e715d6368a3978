"""Pipeline health's measurements (counts, freshness, failed runs, quarantine against
thresholds: the asset is assets/monitoring.py) and cleanup (old quarantine entries,
orphaned temporary files, finished stage containers). Both read the warehouse and the
lake directly: they are the orchestrator's own work, not stages."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import shutil
import time
from datetime import datetime
from pathlib import Path

import psycopg
from dagster import (
    Config,
    DagsterRunStatus,
    OpExecutionContext,
    Output,
    RunsFilter,
    op,
)
from psycopg import sql

from tgmed_common.atomic import is_temp
from tgmed_common.lake import Lake
from tgmed_common.settings import LakeSettings, load_settings
from tgmed_orchestrator.launchers import StageLauncher
from tgmed_orchestrator.settings import CleanupSettings, HealthSettings

COUNTED_TABLES = (
    "raw.telegram_messages",
    "raw.yolo_detections",
    "raw.message_extractions",
    "marts.fct_messages",
    "marts.fct_images",
    "marts.fct_product_mentions",
    "marts.fct_product_prices",
)


def warehouse_counts(url: str) -> tuple[dict[str, int | None], datetime | None]:
    """Row count per table (None when it does not exist yet) and the newest post."""
    counts: dict[str, int | None] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name in COUNTED_TABLES:
            schema, table = name.split(".")
            exists = conn.execute("select to_regclass(%s)", [name]).fetchone()[0]
            if exists is None:
                counts[name] = None
                continue
            query = sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            counts[name] = conn.execute(query).fetchone()[0]
        newest = None
        if counts["raw.telegram_messages"] is not None:
            newest = conn.execute("select max(message_date) from raw.telegram_messages").fetchone()[
                0
            ]
    return counts, newest


def failed_runs_since(context: OpExecutionContext, since: datetime) -> list[str]:
    records = context.instance.get_run_records(
        filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], created_after=since)
    )
    return [f"{r.dagster_run.job_name} {r.dagster_run.run_id[:8]}" for r in records]


def health_problems(
    thresholds: HealthSettings,
    counts: dict[str, int | None],
    newest: datetime | None,
    failed_runs: list[str],
    quarantined: int,
    now: datetime,
) -> list[str]:
    problems = []
    messages = counts.get("raw.telegram_messages")
    if messages is None:
        problems.append("raw.telegram_messages does not exist (run tgmed-loader init-db)")
    elif messages < thresholds.min_messages:
        problems.append(f"{messages} messages loaded, fewer than {thresholds.min_messages}")
    if newest is not None:
        age = (now - newest).total_seconds() / 3600
        if age > thresholds.max_post_age_hours:
            problems.append(
                f"newest post is {age:.0f} h old (threshold {thresholds.max_post_age_hours:g} h)"
            )
    if len(failed_runs) > thresholds.max_failed_runs_per_day:
        problems.append(f"{len(failed_runs)} failed runs in the last day: {', '.join(failed_runs)}")
    if quarantined > thresholds.max_quarantined_files:
        problems.append(
            f"{quarantined} quarantined files (threshold {thresholds.max_quarantined_files})"
        )
    return problems


class CleanupConfig(Config):
    quarantine_days: float | None = None  # default CLEANUP_QUARANTINE_DAYS
    temp_hours: float | None = None  # default CLEANUP_TEMP_HOURS


def old_quarantine_entries(lake: Lake, older_than: float) -> list[Path]:
    """quarantine/<stream>/<stamp>/ folders last changed before `older_than` (epoch)."""
    root = lake.quarantine_root
    if not root.is_dir():
        return []
    return sorted(
        entry
        for stream in root.iterdir()
        if stream.is_dir()
        for entry in stream.iterdir()
        if entry.stat().st_mtime < older_than
    )


def old_temp_files(lake: Lake, older_than: float) -> list[Path]:
    """Temporary files a crashed writer left behind (readers never see them)."""
    if not lake.root.is_dir():
        return []
    return sorted(
        p
        for p in lake.root.rglob(".*")
        if p.is_file() and is_temp(p) and p.stat().st_mtime < older_than
    )


@op(description="Remove old quarantine entries, orphaned temp files, finished stage containers.")
def cleanup_op(
    context: OpExecutionContext, launcher: StageLauncher, config: CleanupConfig
) -> Output:
    settings = load_settings(CleanupSettings)
    lake = Lake(load_settings(LakeSettings).lake_dir)
    days = (
        config.quarantine_days if config.quarantine_days is not None else settings.quarantine_days
    )
    hours = config.temp_hours if config.temp_hours is not None else settings.temp_hours
    now = time.time()
    entries = old_quarantine_entries(lake, now - days * 86400)
    for entry in entries:
        context.log.info(f"removing quarantine entry {lake.relative(entry)}")
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    temps = old_temp_files(lake, now - hours * 3600)
    for path in temps:
        context.log.info(f"removing temporary file {lake.relative(path)}")
        path.unlink(missing_ok=True)
    containers = launcher.prune(context)
    return Output(
        {"quarantine_entries": len(entries), "temp_files": len(temps), "containers": containers},
        metadata={
            "quarantine_entries_removed": len(entries),
            "temp_files_removed": len(temps),
            "stage_containers_removed": containers,
        },
    )
