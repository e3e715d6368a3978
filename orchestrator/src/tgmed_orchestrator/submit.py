"""`tgmed-orchestrator launch JOB`: a run started from a shell, submitted the way the
Dagster UI submits one, then followed to its end.

The run is created through the code location (`dagster job launch` against a code
server of the location `tgmed`), so it carries the location's origin and shows on the
job's page, in Overview and in the Jobs list, and it goes through the instance's run
queue (QueuedRunCoordinator), so the tag limits apply: a warehouse job waits for the
warehouse job that is running. Who takes it off the queue: see local_services.py.

While it waits and runs, the terminal gets one line per step with the stage's counts
(the numbers of the assets it materialized, or of an op's summary; a step that
materialized many assets, like dbt's, gets their count and its checks instead), the
stages' own progress lines for slow steps (at most one
per step every PROGRESS_EVERY seconds), retries and failures; the full logs stay in the
UI. Exit code 0 when the run succeeded, 1 when it failed, 130 when Ctrl-C canceled it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)

from tgmed_common.process import ignore_stop_signals, stop_signals_interrupt
from tgmed_orchestrator.local_services import (
    ServicesLock,
    dagster_bin,
    forget_dead_launch,
    live_daemon,
    python_module_workspace,
    start_services,
    wait_for_socket,
)
from tgmed_orchestrator.outcomes import error_texts
from tgmed_orchestrator.run_launcher import WorkerStatus

POLL_SECONDS = 0.5
PROGRESS_EVERY = 15.0
MATERIALIZATIONS_LISTED = 10  # more (dbt's models) are counted, not listed
WAREHOUSE_TAG = "tgmed/warehouse"
_PROGRESS = re.compile(r"\bprogress: (?P<text>.+)$")
_NOT_COUNTS = ("seconds", "per_second", "exit_code", "_ns")
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


class SubmitError(RuntimeError):
    """The run could not be submitted; the message says why."""


def counts_line(summary: dict[str, Any] | None) -> str:
    """A stage summary's numbers as `name value, ...` (dbt's `counts.` prefix dropped)."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            if not prefix.endswith(_NOT_COUNTS):
                parts.append(f"{prefix.removeprefix('counts.')} {value:,}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)

    walk("", summary or {})
    return ", ".join(parts)


@dataclass
class RunReporter:
    """Turns a run's events into the few lines a person wants in a terminal."""

    out: TextIO
    started: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)
    materialized: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, list[bool]] = field(default_factory=dict)
    last_progress: dict[str, float] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, entry) -> None:
        event = entry.dagster_event
        step = entry.step_key or ""
        if event is None:
            self._log_line(step, entry.user_message or "", entry.timestamp)
            return
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            self.say("run started")
        elif kind == DagsterEventType.STEP_START:
            self.started[step] = entry.timestamp
        elif kind == DagsterEventType.STEP_OUTPUT:
            summary = event.event_specific_data.metadata.get("summary")
            if summary is not None:
                self.summaries[step] = summary.value
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            numbers = {key: value.value for key, value in materialization.metadata.items()}
            where = f" [{materialization.partition}]" if materialization.partition else ""
            line = f"{materialization.asset_key.to_user_string()}{where}"
            counts = counts_line(numbers)
            self.materialized.setdefault(step, []).append(f"{line}: {counts}" if counts else line)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            outcome = "passed"
            if not evaluation.passed:
                warn = evaluation.severity == AssetCheckSeverity.WARN
                outcome = f"{'warning' if warn else 'FAILED'} {evaluation.check_name}"
            self.checks.setdefault(step, []).append(outcome)
        elif kind == DagsterEventType.STEP_SUCCESS:
            self._step_done(step, entry.timestamp - self.started.get(step, entry.timestamp))
        elif kind == DagsterEventType.STEP_UP_FOR_RETRY:
            data = event.event_specific_data
            wait = getattr(data, "seconds_to_wait", None)
            why = _first_line(getattr(data, "error", None))
            self.say(f"  retry   {step} in {wait or 0:.0f} s: {why}")
        elif kind == DagsterEventType.STEP_FAILURE:
            self.say(f"  FAILED  {step}: {_first_line(event.event_specific_data.error)}")
        elif kind == DagsterEventType.RUN_FAILURE:
            message = entry.user_message or ""
            if "steps failed" not in message.lower():
                self.say(f"  run failed: {message.splitlines()[0] if message else ''}")

    def _step_done(self, step: str, took: float) -> None:
        materialized = self.materialized.get(step, [])
        checks = self.checks.get(step, [])
        head = f"  ok      {step} ({took:.0f} s)"
        if checks and not materialized and step not in self.summaries:  # a check's own step
            self.say(f"{head}: {self._checks_line(checks)}")
            return
        if step in self.summaries:
            counts = counts_line(self.summaries[step])
            self.say(f"{head}{': ' + counts if counts else ''}")
        elif len(materialized) == 1:
            self.say(f"{head}: {materialized[0]}")
        elif len(materialized) <= MATERIALIZATIONS_LISTED:
            self.say(head)
            for line in materialized:
                self.say(f"          {line}")
        else:
            self.say(f"{head}: {len(materialized)} assets materialized")
        if checks:
            self.say(f"          {self._checks_line(checks)}")

    @staticmethod
    def _checks_line(checks: list[str]) -> str:
        others = sorted(outcome for outcome in checks if outcome != "passed")
        listed = ", ".join(others[:MATERIALIZATIONS_LISTED])
        more = (
            f" and {len(others) - MATERIALIZATIONS_LISTED} more"
            if len(others) > MATERIALIZATIONS_LISTED
            else ""
        )
        return f"checks: {len(checks) - len(others)} passed" + (
            f"; {listed}{more} (see the UI)" if others else ""
        )

    def _log_line(self, step: str, message: str, when: float) -> None:
        match = _PROGRESS.search(message)
        if not match or not step:
            return
        final = ": done," in match["text"]
        if final or when - self.last_progress.get(step, 0.0) >= PROGRESS_EVERY:
            self.last_progress[step] = when
            if not final:
                self.say(f"  ...     {step}: {match['text']}")


def _first_line(error) -> str:
    """What a person needs of a step's error: the first line of each message along its
    cause chain, without Dagster's own wrappers (outcomes.error_texts)."""
    lines: list[str] = []
    for text in error_texts(error):
        first = text.splitlines()[0]
        if first not in lines:
            lines.append(first)
    return "; caused by: ".join(lines)[:400]


def submit(
    job: str, run_config: dict[str, Any], workspace: Path, run_id: str, tags: dict[str, str]
) -> None:
    """Create the run through the code location and submit it to the instance."""
    command = [
        dagster_bin("dagster"),
        *("job", "launch", "-w", str(workspace), "-j", job),
        *("--config-json", json.dumps(run_config), "--run-id", run_id),
    ]
    if tags:
        command += ["--tags", json.dumps(tags)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # `dagster job` is "superseded" by dg
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise SubmitError(f"dagster job launch {job} failed ({done.returncode}):\n{tail}")


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


def fail_dead_runs(instance: DagsterInstance, reporter: RunReporter) -> None:
    """Before submitting: a run of this instance left STARTED by a run worker that is gone
    (the platform killed, a reboot) is marked FAILURE now, with what was found, and the
    terminal says so. The daemon's run monitoring does the same while it runs (it may
    also be first: the run's status is read again just before)."""
    launcher = instance.run_launcher
    if not launcher.supports_check_run_worker_health:
        return
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        health = launcher.check_run_worker_health(run)
        if health.status != WorkerStatus.FAILED:
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status != DagsterRunStatus.STARTED:
            continue
        instance.report_run_failed(
            current, f"Detected run worker status {health}. Marking run {run.run_id} as failed."
        )
        reporter.say(f"{run.job_name} {run.run_id[:8]} ended: FAILURE: {health.msg}")


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


@dataclass
class Launch:
    """One `launch` command: whoever dequeues, the submission, the following."""

    instance: DagsterInstance
    home: Path
    out: TextIO = sys.stdout
    lock: ServicesLock = field(init=False)
    services: Any = None
    dequeuer: str = ""

    def __post_init__(self) -> None:
        self.lock = ServicesLock(self.home)

    def ensure_dequeuer(self) -> None:
        """Someone takes runs off the queue: another launch command, a live daemon, or
        the services this process starts now."""
        if self.services is not None:
            return
        if self.lock.try_acquire():
            forget_dead_launch(self.home)
            if daemon := live_daemon(self.instance, self.home):
                self.lock.release()
                self.dequeuer = daemon
                return
            self.services = start_services(self.home)
            self.dequeuer = "this command's daemon"
            return
        self.dequeuer = "the daemon of another tgmed-orchestrator launch"

    def workspace(self, folder: Path) -> Path:
        if self.services is not None:
            wait_for_socket(self.services)
            return self.services.workspace
        return python_module_workspace(folder)

    def follow(self, run_id: str, reporter: RunReporter) -> DagsterRunStatus:
        cursor = None
        queue = QueueReport()
        while True:
            page = self.instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
            for record in page.records:
                reporter.event(record.event_log_entry)
            cursor = page.cursor
            if page.has_more:
                continue
            run = self.instance.get_run_by_id(run_id)
            if run is None:
                raise SubmitError(f"run {run_id} is not in the instance at {self.home}")
            if run.is_finished:
                page = self.instance.get_records_for_run(run_id, cursor=cursor)
                for record in page.records:
                    reporter.event(record.event_log_entry)
                return run.status
            if run.status == DagsterRunStatus.QUEUED or queue.blocking:
                queue.update(self.instance, run, reporter)
            if run.status == DagsterRunStatus.QUEUED:
                if self.services is None and self.dequeuer.startswith("a running"):
                    if not live_daemon(self.instance, self.home):
                        reporter.say("the daemon it relied on stopped; starting one")
                        self.ensure_dequeuer()
                elif self.services is None and self.lock.try_acquire():
                    self.lock.release()  # the other launch command has ended
                    reporter.say("the launch command it relied on ended; starting a daemon")
                    self.ensure_dequeuer()
            if self.services is not None:
                self.services.note_daemon(self.instance)
            if self.services is not None and (problem := self.services.dead()):
                raise SubmitError(f"the Dagster services stopped: {problem}")
            time.sleep(POLL_SECONDS)

    def cancel(self, run_id: str, reporter: RunReporter) -> None:
        run = self.instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        reporter.say(f"canceling run {run_id} ...")
        self.instance.run_coordinator.cancel_run(run_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = self.instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                break
            time.sleep(POLL_SECONDS)
        reporter.say(f"run {run_id}: {run.status.value if run else 'gone'}")

    def drain(self, reporter: RunReporter) -> None:
        """Before stopping our daemon: every queued run, and every run on our code
        server (other launch commands rely on them), must have ended."""
        said = False
        while True:
            queued = self.instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
            running = [
                r
                for r in self.instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS))
                if self.services.may_serve(r)
            ]
            if not queued and not running:
                return
            if not said:
                names = ", ".join(f"{r.job_name} {r.run_id[:8]}" for r in [*running, *queued])
                reporter.say(f"keeping the daemon for the other runs it serves: {names}")
                said = True
            if problem := self.services.dead():
                reporter.say(f"the Dagster services stopped: {problem}")
                return
            time.sleep(POLL_SECONDS)

    def close(self, reporter: RunReporter, *, drain: bool) -> None:
        if self.services is not None:
            if drain:
                self.drain(reporter)
            self.services.stop(self.instance)
            self.services = None
        self.lock.release()


def launch_job(
    instance: DagsterInstance,
    home: Path,
    job: str,
    run_config: dict[str, Any],
    tags: dict[str, str] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Submit `job` through the code location and the run queue, follow it, and return
    0 (SUCCESS), 1 (failed or canceled) or 130 (Ctrl-C, SIGTERM or SIGHUP: the run is
    canceled and what this process started is stopped, whichever signal asked)."""
    stop_signals_interrupt()
    run_id = str(uuid.uuid4())
    reporter = RunReporter(out)
    launch = Launch(instance, home, out)
    status = None
    try:
        launch.ensure_dequeuer()
        fail_dead_runs(instance, reporter)
        with tempfile.TemporaryDirectory(prefix="tgmed-submit-") as folder:
            submit(job, run_config, launch.workspace(Path(folder)), run_id, tags or {})
        reporter.say(f"run {run_id} of {job} submitted (taken off the queue by {launch.dequeuer})")
        status = launch.follow(run_id, reporter)
    except KeyboardInterrupt:
        ignore_stop_signals()  # a second Ctrl-C (or TERM, HUP) must not skip the stop
        launch.cancel(run_id, reporter)
        launch.close(reporter, drain=False)
        return 130
    except BaseException:
        ignore_stop_signals()
        launch.close(reporter, drain=False)
        raise
    try:
        launch.close(reporter, drain=True)
    except KeyboardInterrupt:
        ignore_stop_signals()
        launch.close(reporter, drain=False)
    outcome = "SUCCESS" if status == DagsterRunStatus.SUCCESS else status.value
    reporter.say(f"run {run_id} of {job}: {outcome}")
    return 0 if status == DagsterRunStatus.SUCCESS else 1
