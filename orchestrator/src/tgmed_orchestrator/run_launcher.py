"""Local mode's run launcher: Dagster's default launcher, plus the run worker's health.

Dagster's DefaultRunLauncher starts a run worker as a process of the code server and
cannot tell whether it still lives, so run monitoring skips STARTED runs: a run whose
run worker died with everything around it (kill -9 of the whole tree, out of memory, a
power cut, a reboot, a closed terminal) stays STARTED for ever, and through the
`tgmed/warehouse` concurrency limit it blocks every later load and dbt build (issue 30).

This launcher answers run monitoring's health check (`check_run_worker_health`, the hook
dagster-docker and dagster-k8s answer with their container's or job's state): the run
worker records its process id in the run's event log when it starts ("Started process
for run (pid: N)", an engine event with metadata `pid`). The worker is alive when a
process with that id exists, is not a zombie, and started no later than that event (a
process that took the id over after the worker died, or after a reboot, started later).
The daemon's run monitoring then marks a dead run FAILURE with the launcher's reason
(which run, which process, what was found), on its first pass after the daemon starts
and every `poll_interval_seconds` while it runs.

The health check is only as good as the pid: it holds where the daemon and the code
server share a machine and a process namespace, which is what local mode is. Docker and
Kubernetes use dagster-docker's and dagster-k8s's launchers, which check their
containers and jobs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher

# Dagster has no public export of the health-check result types (dagster-docker and
# dagster-k8s import them from here too); this module is the one place that does.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

PID_METADATA = "pid"
# /proc's start times count clock ticks; the event is written after the process started
START_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class RunWorker:
    """The run worker process a run recorded when it started."""

    pid: int
    recorded_at: float  # the event's timestamp (epoch seconds)


def recorded_run_worker(instance, run_id: str) -> RunWorker | None:
    """The run worker's process id from the run's "Started process for run" event; the
    newest one if the run was resumed. None when the run recorded none (not started by a
    code server yet, or executed in process)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT, ascending=False, limit=200
    ).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        value = metadata.get(PID_METADATA)
        if value is not None:
            return RunWorker(int(value.value), entry.timestamp)
    return None


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime")


def process_state(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[19])  # field 22 of proc(5), starttime
    return fields[0], _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def worker_health(worker: RunWorker) -> tuple[bool, str]:
    """Whether the recorded run worker still runs, and what was found."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(worker.recorded_at))
    state = process_state(worker.pid)
    if state is None:
        return False, f"its run worker (pid {worker.pid}, started {when}) no longer exists"
    letter, started = state
    if letter in ("Z", "X"):
        return False, f"its run worker (pid {worker.pid}, started {when}) has exited"
    if started > worker.recorded_at + START_SLACK_SECONDS:
        return False, (
            f"its run worker (pid {worker.pid}, started {when}) no longer exists: pid "
            f"{worker.pid} is another process now, started "
            f"{time.strftime('%H:%M:%S', time.localtime(started))} (the machine or the "
            "platform was restarted)"
        )
    return True, f"run worker pid {worker.pid} is running"


class LocalRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers run monitoring can check (see the module)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = recorded_run_worker(self._instance, run.run_id)
        if worker is None:
            # STARTED without the worker's event: not launched through a code server
            # (executed in process). Run monitoring fails any status but RUNNING and
            # SUCCESS, and nothing here can tell, so the run is left as it is.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded")
        alive, found = worker_health(worker)
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, found)
        return CheckRunHealthResult(WorkerStatus.FAILED, found)

    def get_run_worker_debug_info(
        self, run: DagsterRun, include_container_logs: bool | None = True
    ) -> str | None:
        worker = recorded_run_worker(self._instance, run.run_id)
        if worker is None:
            return None
        _, found = worker_health(worker)
        return (
            f"Run {run.run_id} of {run.job_name}: {found}. Its steps' stages are idempotent: "
            "the next run redoes what this one left unfinished, without duplicates."
        )
