"""Local mode's run workers: whether each STARTED run's worker process still lives, and
a dead one's run marked FAILURE (issue 30).

Dagster's DefaultRunLauncher starts a run worker as a process of the code server and
cannot tell whether it still lives, so run monitoring skips STARTED runs: a run whose
run worker died with everything around it (kill -9 of the whole tree, out of memory, a
power cut, a reboot, a closed terminal) would stay STARTED for ever, and through the
`tgmed/warehouse` concurrency limit block every later load and dbt build.

The run worker records its process id in the run's event log when it starts ("Started
process for run (pid: N)", an engine event with metadata `pid`). The worker is alive
when a process with that id exists, is not a zombie, and started no later than that
event (a process that took the id over after the worker died, or after a reboot,
started later). Who acts on a dead one, each with `fail_dead_runs`:

- the `dead_run_workers` sensor, every 15 s while the daemon runs;
- every `tgmed-orchestrator launch`, before it submits (the daemon may have died too);
- `tgmed-orchestrator terminate` for the run it is asked to end.

The check uses only Dagster's public API (the run-monitoring hook of a custom run
launcher would need Dagster's private health types), and it is only as good as the pid:
it holds where the run workers and whoever checks share a machine and a process
namespace, which is local mode (DefaultRunLauncher). Docker and Kubernetes use
dagster-docker's and dagster-k8s's launchers, whose run monitoring checks their
containers and jobs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultRunLauncher,
    RunsFilter,
)

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


def checks_run_workers(instance: DagsterInstance) -> bool:
    """Whether this instance's run workers are processes of this machine: its dagster.yaml
    names Dagster's default run launcher, or none (local mode). Read from the instance's
    configuration, not by building its launcher: a code server builds none, and
    Kubernetes' would need credentials the code location's pod does not have."""
    configured = instance.get_ref().run_launcher_data
    return configured is None or configured.class_name == DefaultRunLauncher.__name__


def dead_run_worker(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """What was found when `run`'s recorded run worker is gone; None when it lives or
    when the run recorded none (STARTED without the worker's event: executed in
    process, or its code server has not written it yet; nothing here can tell)."""
    worker = recorded_run_worker(instance, run.run_id)
    if worker is None:
        return None
    alive, found = worker_health(worker)
    return None if alive else found


def has_live_run_worker(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Whether `run` recorded a run worker that is still running."""
    worker = recorded_run_worker(instance, run.run_id)
    return worker is not None and worker_health(worker)[0]


def fail_dead_run(instance: DagsterInstance, run: DagsterRun, found: str, by: str) -> bool:
    """Mark `run` FAILURE with what was found, if it is still STARTED (run monitoring or
    another checker may have been first). Returns whether this call marked it."""
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.status != DagsterRunStatus.STARTED:
        return False
    instance.report_run_failed(
        current,
        f"Marked failed by {by}: {found}. Its steps' stages are idempotent: the next run "
        "redoes what this one left unfinished, without duplicates.",
    )
    return True


def fail_dead_runs(instance: DagsterInstance, by: str) -> Iterator[tuple[DagsterRun, str]]:
    """Every STARTED run of this instance whose run worker is gone, marked FAILURE:
    (run, what was found) for each one this call marked. Nothing outside local mode."""
    if not checks_run_workers(instance):
        return
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        found = dead_run_worker(instance, run)
        if found is not None and fail_dead_run(instance, run, found, by):
            yield run, found
