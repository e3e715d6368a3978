"""What a queued run waits for, in a terminal (`tgmed-orchestrator launch`): which runs
hold the warehouse slot (the `tgmed/warehouse` tag's limit), in which state since when,
again every minute, how each of them ended, and what to do if one of them is dead."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from tgmed_orchestrator.run_report import RunReporter

WAREHOUSE_TAG = "tgmed/warehouse"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
QUEUED_REMINDER_SECONDS = 60.0  # a run still queued says so again, with the wait so far


def _blockers(instance: DagsterInstance, run) -> list:
    """The runs holding the warehouse slot a queued run waits for (its tag's limit)."""
    if WAREHOUSE_TAG not in run.tags:
        return []
    records = instance.get_run_records(
        filters=RunsFilter(statuses=IN_PROGRESS, tags={WAREHOUSE_TAG: run.tags[WAREHOUSE_TAG]})
    )
    return [r for r in records if r.dagster_run.run_id != run.run_id]


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def queued_line(blockers: list, now: float, queued_at: float) -> str:
    """What a queued run waits for: which runs, in which state since when, and what to do
    if one of them is dead."""
    waited = f"waiting {_minutes(now - queued_at)}"
    if not blockers:
        return "queued" if now - queued_at < 1 else f"queued ({waited})"
    parts = []
    for record in blockers:
        run = record.dagster_run
        since = record.start_time or record.create_timestamp.timestamp()
        parts.append(
            f"{run.job_name} {run.run_id[:8]} ({run.status.value} since {_clock(since)}, "
            f"{_minutes(now - since)} ago)"
        )
    first = blockers[0].dagster_run.run_id[:8]
    return (
        f"queued behind {', '.join(parts)} ({WAREHOUSE_TAG}: one at a time; {waited}). "
        "If that run's processes are gone (a crash, a reboot), run monitoring marks it "
        "FAILURE within a minute of the daemon's start; to end it yourself: "
        f"tgmed-orchestrator terminate {first}"
    )


def _failure_reason(instance: DagsterInstance, run_id: str) -> str:
    """The first line of a failed run's reason (its RUN_FAILURE event's message)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.RUN_FAILURE, ascending=False, limit=1
    ).records
    entry = records[0].event_log_entry if records else None
    message = entry and (entry.dagster_event.message or entry.user_message)
    for line in (message or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


@dataclass
class QueueReport:
    """The lines of a queued run: what it waits behind, again every minute, and how each
    run it waited behind ended."""

    blocking: dict[str, str] = field(default_factory=dict)  # run id -> "job id8"
    said_at: float = 0.0
    queued_at: float = field(default_factory=time.time)

    def update(self, instance: DagsterInstance, run, reporter: RunReporter) -> None:
        now = time.time()
        queued = run.status == DagsterRunStatus.QUEUED
        blockers = _blockers(instance, run) if queued else []
        current = {r.dagster_run.run_id: r.dagster_run.job_name for r in blockers}
        for run_id in self.blocking.keys() - current.keys():
            ended = instance.get_run_by_id(run_id)
            status = ended.status.value if ended else "gone"
            reason = _failure_reason(instance, run_id) if status == "FAILURE" else ""
            reporter.say(
                f"{self.blocking[run_id]} {run_id[:8]} ended: {status}"
                + (f": {reason}" if reason else "")
            )
        changed = current.keys() != self.blocking.keys()
        self.blocking = current
        if queued and (changed or now - self.said_at >= QUEUED_REMINDER_SECONDS):
            reporter.say(queued_line(blockers, now, self.queued_at))
            self.said_at = now
