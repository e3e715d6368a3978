"""When jobs run by themselves (UTC). Stopped until switched on (UI or
`tgmed-orchestrator`): a fresh checkout has no Telegram credentials to scrape with."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from tgmed_orchestrator.jobs import cleanup, pipeline_health, telegram_pipeline, transform


@schedule(
    job=telegram_pipeline,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="the full pipeline, daily at 02:00 UTC, over the configured channels",
)
def telegram_pipeline_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    # no partition: the run plans its channels (planning.py) and records each
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return RunRequest(run_key=f"daily-{stamp}", tags={"tgmed/schedule": "daily"})


@schedule(
    job=transform,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="weekly, Sunday 03:00 UTC: dbt build --full-refresh (incremental marts "
    "rebuilt from raw, so any drift is gone)",
)
def weekly_full_refresh_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return RunRequest(
        run_key=f"weekly-{stamp}",
        run_config={"ops": {"dbt_models": {"config": {"full_refresh": True}}}},
        tags={"tgmed/schedule": "weekly"},
    )


@schedule(
    job=cleanup,
    cron_schedule="30 3 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="weekly, Sunday 03:30 UTC: old quarantine and temp files, stage containers",
)
def cleanup_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(run_key=f"cleanup-{context.scheduled_execution_time:%Y-%m-%d}")


@schedule(
    job=pipeline_health,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="hourly health check",
)
def pipeline_health_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(run_key=f"health-{context.scheduled_execution_time:%Y-%m-%dT%H}")


SCHEDULES = [
    telegram_pipeline_schedule,
    weekly_full_refresh_schedule,
    cleanup_schedule,
    pipeline_health_schedule,
]
