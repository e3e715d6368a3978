"""The steps every scenario repeats: wait for a run to reach a point of its progress,
see it fail and alert, run it again, and compare what is left with the clean run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform, log
from chaos.report import Row
from chaos.snapshot import compare
from tgmed_orchestrator.dagster_client import FINISHED, EventLog


@dataclass
class Reached:
    """Where a run was when the wait ended."""

    events: EventLog
    finished: bool  # the run finished before the point was reached


def wait_for_progress(
    platform: LocalPlatform,
    run_id: str,
    reached: Callable[[EventLog], bool],
    timeout: float = 900,
    poll: float = 0.25,
) -> Reached:
    """Poll the run's event log until `reached(events)` (a point defined by progress:
    an event count, a step's events), or the run finishes, or `timeout`."""
    events = EventLog(run_id)
    deadline = time.monotonic() + timeout
    while True:
        platform.api.read_events(events)
        if reached(events):
            return Reached(events, False)
        if platform.api.run(run_id).status in FINISHED or time.monotonic() > deadline:
            platform.api.read_events(events)
            return Reached(events, True)
        time.sleep(poll)


def kill9(pid: int) -> bool:
    try:
        psutil.Process(pid).kill()
    except psutil.NoSuchProcess:
        return False
    return True


def await_failure(
    platform: LocalPlatform,
    run_id: str,
    fault_at: float,
    row: Row,
    timeout: float = 300,
    *,
    recover: bool = False,
) -> str:
    """The run's final status; records the seconds from the fault to FAILURE, or a
    problem when the run did not fail (or not in time). `recover`: a run that recovers
    through its retries (SUCCESS) is fine too (a Dagster step process that crashed is
    retried like any crash)."""
    run = platform.wait_status(run_id, timeout)
    if run.status == "FAILURE":
        ended = run.end_time or time.time()
        row.failure_seconds.append(max(0.0, ended - fault_at))
    elif run.status == "SUCCESS" and recover:
        log(f"  run {run_id[:8]} recovered through its retries")
    elif run.status in FINISHED:
        row.problems.append(f"run {run_id[:8]}: {run.status} after the fault (expected FAILURE)")
    else:
        row.problems.append(
            f"run {run_id[:8]}: still {run.status} {timeout:.0f} s after the fault (not marked "
            "FAILURE)"
        )
    return run.status


def await_alert(platform: LocalPlatform, run_id: str, failed_at: float, row: Row) -> str:
    """Waits (up to 2 minutes after the failure) for the alert naming the run."""
    alert = platform.receiver.wait_for(run_id, timeout=max(1.0, failed_at + 150 - time.time()))
    row.alert_seconds.append(None if alert is None else max(0.0, alert.received_at - failed_at))
    return alert.text if alert else ""


def expect_alert(run_id: str, failed_at: float, row: Row) -> None:
    """The alert naming the run is checked later (settle_alerts), so the next trial need
    not wait for the failure sensor's next tick."""
    row.pending_alerts.append((run_id, failed_at))


def settle_alerts(platform: LocalPlatform, row: Row) -> None:
    for run_id, failed_at in row.pending_alerts:
        alert = platform.receiver.wait_for(run_id, timeout=max(1.0, failed_at + 150 - time.time()))
        row.alert_seconds.append(None if alert is None else max(0.0, alert.received_at - failed_at))
    row.pending_alerts.clear()


def collect_leftover_processes(platform: LocalPlatform, row: Row, what: str) -> None:
    """A finished run must leave no process or container behind (given a few seconds to
    exit); whatever is left is recorded and then removed, so the next trial starts
    clean."""
    left = platform.wait_no_leftovers(timeout=30)
    row.leftovers += [f"{what}: {item}" for item in left]
    platform.clear_leftovers()


def compare_with_clean(platform: LocalPlatform, baseline: Baseline, row: Row, what: str) -> str:
    """The lake and the warehouse against the clean run's, and no temporary file or
    process left; returns the difference in words."""
    snap = platform.snapshot()
    diff = compare(baseline.snapshot, snap)
    row.lost += diff.lost_rows
    row.duplicated += diff.duplicated_rows
    if not diff.equal:
        row.problems.append(f"{what}: {diff.describe()}")
    row.leftovers += [f"{what}: temporary file {path}" for path in snap.temp_files]
    collect_leftover_processes(platform, row, f"{what}, after the run")
    return diff.describe()


def recover_and_compare(platform: LocalPlatform, baseline: Baseline, row: Row, what: str) -> None:
    """A normal run after the fault: it must succeed, and the lake and the warehouse must
    equal the clean run's, with no temporary file and no process left."""
    outcome = platform.run()
    if outcome.status != "SUCCESS":
        failures = " | ".join(outcome.events.failures())[:600]
        row.problems.append(f"{what}: the next run ended {outcome.status}: {failures}")
    found = compare_with_clean(platform, baseline, row, what)
    log(f"  {what}: next run {outcome.status} in {outcome.seconds:.0f} s; {found}")


def ensure_quiet(platform: LocalPlatform) -> None:
    """No process or container of this session besides the platform's services."""
    platform.clear_leftovers()
