"""`tgmed-orchestrator`: the few things a person does with the orchestrator from a shell.

    tgmed-orchestrator jobs                       the jobs and their ops
    tgmed-orchestrator launch JOB [--config F]    run a job now, recorded in DAGSTER_HOME
    tgmed-orchestrator status                     schedules and sensors: on or off, last tick
    tgmed-orchestrator runs [--limit N]           the latest runs and how they ended
    tgmed-orchestrator terminate RUN_ID           end a queued or running run (a prefix will do)
    tgmed-orchestrator check-ui [--url U] [--job J]  the UI answers and shows J's last run SUCCESS
    tgmed-orchestrator daemon-stopped --since T   the daemon started after T (epoch s) has
                                                  stopped: launches do not wait on it

`launch` submits the run the way the UI does, to a Dagster webserver (its own `dagster
dev` when none serves DAGSTER_HOME's instance): created through the code location and
put on the instance's run queue, so it shows on the job's page and waits for a running
warehouse job (submit.py, local_services.py); it prints a line per step and waits for the
end. Exit code 0 when the run succeeded, 1 when it failed, 2 for a usage error, 130
when Ctrl-C canceled it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _in_progress():
    from dagster import DagsterRunStatus

    return [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def _defs():
    from tgmed_orchestrator.definitions import defs

    return defs


def _instance():
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set (make targets set it to data/dagster)")
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def list_jobs() -> int:
    repo = _defs().get_repository_def()
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        ops = ", ".join(node.name for node in job.graph.nodes)
        print(f"{job.name:20} {job.description or ''}\n{'':20} ops: {ops}")
    return 0


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def launch(name: str, config_path: str | None, max_concurrent: int, log_level: str) -> int:
    from tgmed_orchestrator.submit import SubmitError, launch_job

    repo = _defs().get_repository_def()
    if not repo.has_job(name):
        names = sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__"))
        print(f"no job {name!r}; jobs: {', '.join(names)}", file=sys.stderr)
        return 2
    run_config = _load_config(config_path)
    run_config.setdefault(
        "execution", {"config": {"multiprocess": {"max_concurrent": max_concurrent}}}
    )
    run_config.setdefault("loggers", {"console": {"config": {"log_level": log_level}}})
    with _instance() as instance:
        try:
            return launch_job(instance, Path(os.environ["DAGSTER_HOME"]), name, run_config)
        except SubmitError as error:
            print(f"launch {name}: {error}", file=sys.stderr)
            return 1


def daemon_stopped(since: float) -> int:
    """Record that the daemon whose heartbeat is the queue's last, started at or after
    `since`, has stopped (serve.sh, after stopping `dagster dev`)."""
    from tgmed_orchestrator.local_services import mark_daemon_stopped

    with _instance() as instance:
        daemon_id = mark_daemon_stopped(instance, Path(os.environ["DAGSTER_HOME"]), since)
    print(f"daemon {daemon_id} marked stopped" if daemon_id else "no daemon of that start")
    return 0


def status() -> int:
    defs = _defs()
    repo = defs.get_repository_def()
    with _instance() as instance:
        stored = {  # (kind, name): the state the UI or the daemon stored
            (state.instigator_type.value.lower(), state.name): state
            for state in instance.all_instigator_state()
        }
        rows = [
            ("schedule", s.name, s.cron_schedule, s.job_name, s.default_status)
            for s in repo.schedule_defs
        ] + [
            (
                "sensor",
                s.name,
                "",
                ", ".join(t.job_name for t in s.targets) or "(all jobs)",
                s.default_status,
            )
            for s in repo.sensor_defs
        ]
        for kind, name, cron, job, default in sorted(rows):
            state = stored.get((kind, name))
            on = state.status.value if state else f"{default.value} (default)"
            ticks = (
                instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                if (state)
                else []
            )
            last = f"last tick {ticks[0].status.value} at {ticks[0].timestamp:.0f}" if ticks else ""
            print(f"{kind:9} {name:30} {on:18} {cron:12} -> {job} {last}")
    return 0


def runs(limit: int) -> int:
    with _instance() as instance:
        for record in instance.get_run_records(limit=limit):
            run = record.dagster_run
            started = record.start_time or record.create_timestamp.timestamp()
            print(f"{run.run_id}  {run.job_name:20} {run.status.value:10} started {started:.0f}")
    return 0


TERMINATE_WAIT_SECONDS = 30


def terminate(prefix: str) -> int:
    """End a run: a queued one is canceled; a running one is asked to stop through its
    code server; one whose run worker is gone (run_workers.py) is marked FAILURE at once,
    as the dead_run_workers sensor would; one that does not stop within TERMINATE_WAIT_SECONDS is
    marked CANCELED (its processes, if any are left, are the user's to stop)."""
    import time

    from dagster import DagsterRunStatus, RunsFilter

    from tgmed_orchestrator.run_workers import checks_run_workers, dead_run_worker, fail_dead_run

    active = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, *_in_progress()]
    with _instance() as instance:
        found = [
            r
            for r in instance.get_runs(filters=RunsFilter(statuses=active))
            if r.run_id.startswith(prefix)
        ]
        if len(found) != 1:
            what = "no queued or running run" if not found else f"{len(found)} runs"
            print(f"terminate: {what} with an id starting {prefix!r}", file=sys.stderr)
            return 2
        run = found[0]
        name = f"{run.job_name} {run.run_id[:8]}"
        launcher = instance.run_launcher
        if run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
            instance.report_run_canceled(run, "canceled while queued (terminate)")
            print(f"{name}: canceled (it was queued)")
            return 0
        gone = dead_run_worker(instance, run) if checks_run_workers(instance) else None
        if gone is not None:
            fail_dead_run(instance, run, gone, "tgmed-orchestrator terminate")
            print(f"{name}: FAILURE ({gone})")
            return 0
        try:
            asked = launcher.terminate(run.run_id)
        except Exception as error:  # its code server is gone: nobody can stop it politely
            asked = False
            print(f"{name}: its code server did not answer ({type(error).__name__})")
        deadline = time.monotonic() + (TERMINATE_WAIT_SECONDS if asked else 0)
        while time.monotonic() < deadline:
            current = instance.get_run_by_id(run.run_id)
            if current is None or current.is_finished:
                print(f"{name}: {current.status.value if current else 'gone'}")
                return 0
            time.sleep(0.5)
        current = instance.get_run_by_id(run.run_id)
        if current is not None and not current.is_finished:
            instance.report_run_canceled(
                current, "marked canceled by tgmed-orchestrator terminate: it did not stop"
            )
        print(f"{name}: CANCELED (marked: it did not stop by itself)")
        return 0


def check_ui(url: str, job: str, wait_seconds: float, location: str | None = None) -> int:
    """Wait for the Dagster webserver to answer, then ask it (GraphQL, what the UI reads)
    for the job's runs, on the job's page when `location` is given: 0 when the newest
    one is SUCCESS."""
    from tgmed_orchestrator.dagster_client import DagsterApiError, DagsterClient

    dagster = DagsterClient(url, patience=wait_seconds)
    try:
        runs = dagster.job_runs(job, location)
    except DagsterApiError as error:
        print(f"the Dagster UI at {url}: {error}", file=sys.stderr)
        return 1
    for run in runs:
        print(f"{run['jobName']} {run['runId']} {run['status']}")
    if not runs:
        where = f"the job page of {job} in {location}" if location else f"Runs ({job})"
        print(f"{where} at {url} shows no run", file=sys.stderr)
        return 1
    return 0 if runs[0]["status"] == "SUCCESS" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tgmed-orchestrator", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("jobs", help="the jobs and their ops")
    run = commands.add_parser("launch", help="run a job now (recorded in DAGSTER_HOME)")
    run.add_argument("job")
    run.add_argument("--config", help="run config file (YAML or JSON)")
    run.add_argument("--max-concurrent", type=int, default=2, help="steps at once (default 2)")
    run.add_argument("--log-level", default="INFO", help="Dagster console log level")
    commands.add_parser("status", help="schedules and sensors")
    latest = commands.add_parser("runs", help="the latest runs")
    latest.add_argument("--limit", type=int, default=10)
    check = commands.add_parser("check-ui", help="the UI answers and shows a finished run")
    check.add_argument("--url", default="http://127.0.0.1:3000")
    check.add_argument("--job", default="telegram_pipeline")
    check.add_argument("--wait", type=float, default=120, help="seconds to wait for the UI")
    check.add_argument("--location", help="check the job's page within this code location (tgmed)")
    end = commands.add_parser("terminate", help="end a queued or running run")
    end.add_argument("run_id", help="the run's id, or its first characters")
    gone = commands.add_parser("daemon-stopped", help="a daemon this shell stopped is gone")
    gone.add_argument("--since", type=float, required=True, help="its start (epoch seconds)")
    args = parser.parse_args(argv)
    if args.command == "daemon-stopped":
        return daemon_stopped(args.since)
    if args.command == "terminate":
        return terminate(args.run_id)
    if args.command == "check-ui":
        return check_ui(args.url.rstrip("/"), args.job, args.wait, args.location)
    if args.command == "jobs":
        return list_jobs()
    if args.command == "launch":
        return launch(args.job, args.config, args.max_concurrent, args.log_level)
    if args.command == "status":
        return status()
    return runs(args.limit)


if __name__ == "__main__":
    sys.exit(main())
