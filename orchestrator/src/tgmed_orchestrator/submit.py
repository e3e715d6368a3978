"""`tgmed-orchestrator launch JOB`: a run started from a shell, submitted the way the
Dagster UI, compose and Kubernetes submit one, then followed to its end.

The run is submitted to a Dagster webserver's GraphQL API (dagster_client.py), which
creates it through the code location `tgmed`, so it carries the location's origin and
shows on the job's page, in Overview and in the Jobs list, and puts it on the instance's
run queue (QueuedRunCoordinator), so the tag limits apply: a warehouse job waits for the
warehouse job that is running. Which webserver and daemon serve it: local_services.py.

While it waits and runs, the terminal gets one line per step with the stage's counts,
retries and failures (run_report.py), and what a queued run waits for (run_queue.py);
the full logs stay in the UI. Exit code 0 when the run succeeded, 1 when it failed, 130
when Ctrl-C canceled it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)

from tgmed_common.process import ignore_stop_signals, stop_signals_interrupt
from tgmed_orchestrator.dagster_client import DagsterApiError, DagsterClient, wait_until
from tgmed_orchestrator.local_services import (
    START_SECONDS,
    ServicesLock,
    forget_dead_launch,
    launch_url,
    live_daemon,
    serving_url,
    start_services,
)
from tgmed_orchestrator.run_queue import IN_PROGRESS, QueueReport
from tgmed_orchestrator.run_report import RunReporter
from tgmed_orchestrator.run_workers import fail_dead_runs, has_live_run_worker

POLL_SECONDS = 0.5


class SubmitError(RuntimeError):
    """The run could not be submitted; the message says why."""


@dataclass
class Launch:
    """One `launch` command: whoever dequeues, the submission, the following."""

    instance: DagsterInstance
    home: Path
    out: TextIO = sys.stdout
    lock: ServicesLock = field(init=False)
    services: Any = None
    dequeuer: str = ""
    url: str | None = None  # the webserver runs are submitted to

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
                self.dequeuer, self.url = daemon, serving_url(self.home)
                return
            self.services = start_services(self.home)
            self.dequeuer, self.url = "this command's dagster dev", self.services.url
            return
        self.dequeuer = "the dagster dev of another tgmed-orchestrator launch"
        self.url = launch_url(self.home)

    def submit(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        """The run created through the code location and queued; its id."""
        if self.services is not None:
            client = self.services.wait_ready(job)
        else:
            try:
                # the lock's holder records its address right after taking the lock
                self.url = self.url or wait_until(
                    lambda: launch_url(self.home), 60, f"no address of {self.dequeuer}", 0.2
                )
                client = DagsterClient(self.url, patience=10)
                client.wait_ready(job, START_SECONDS)
            except TimeoutError as error:
                raise SubmitError(f"{self.dequeuer}: {error}") from None
        try:
            return client.launch(job, run_config, tags or None)
        except DagsterApiError as error:
            raise SubmitError(str(error)) from None

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

    def cancel(self, run_id: str | None, reporter: RunReporter) -> None:
        run = self.instance.get_run_by_id(run_id) if run_id else None
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
        """Before stopping our daemon: every queued run, and every run our code server
        may run (other launch commands rely on them), must have ended. Local runs are
        run workers of the code server of whoever holds the lock, so that means every
        run starting or canceling and every STARTED one whose run worker lives (one
        without a worker was executed in process; a dead one is fail_dead_runs')."""
        said = False
        while True:
            queued = self.instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
            running = [
                r
                for r in self.instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS))
                if r.status != DagsterRunStatus.STARTED or has_live_run_worker(self.instance, r)
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
    run_id = None
    reporter = RunReporter(out)
    launch = Launch(instance, home, out)
    status = None
    try:
        launch.ensure_dequeuer()
        # a run left STARTED by a run worker that is gone (the platform killed, a reboot)
        # would hold the warehouse queue: marked FAILURE now, before this one queues
        for run, found in fail_dead_runs(instance, "tgmed-orchestrator launch"):
            reporter.say(f"{run.job_name} {run.run_id[:8]} ended: FAILURE: {found}")
        run_id = launch.submit(job, run_config, tags or {})
        reporter.say(
            f"run {run_id} of {job} submitted (taken off the queue by {launch.dequeuer}; "
            f"in the UI: {launch.url}/runs/{run_id})"
        )
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
