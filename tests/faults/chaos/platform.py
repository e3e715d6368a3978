"""The platform in local mode, as a user runs it: an embedded PostgreSQL, Dagster's
webserver, daemon and code server (`dagster dev`, its instance in its own DAGSTER_HOME
with the project's local dagster.yaml: run queue, run monitoring), the sample's Telegram
Desktop exports as the source, the alert webhook pointed at the suite's receiver.

Everything lives in one work folder; every secret the platform reads is a fresh random
value (so scenario 7 can look for it everywhere); every process carries the session's
marker (leftovers.CHAOS_MARKER)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chaos.alerts import AlertReceiver
from chaos.leftovers import (
    CHAOS_MARKER,
    crash,
    kill_all,
    leftover_processes,
    postmaster_pid,
    session_processes,
    wait_dead,
    wait_no_leftover_processes,
)
from chaos.snapshot import Snapshot, snapshot
from tgmed_common.process import stop_group
from tgmed_orchestrator.dagster_client import FINISHED, DagsterClient, EventLog, Run

JOB = "telegram_pipeline"  # the job the suite runs unless a scenario names another


def finished_or_current(api: DagsterClient, run_id: str, timeout: float, poll: float) -> Run:
    """The run once finished, or as it is after `timeout`: the suite reports a run left
    unfinished rather than stopping there."""
    with contextlib.suppress(TimeoutError):
        return api.wait_finished(run_id, timeout, poll)
    return api.run(run_id)


ROOT = Path(__file__).resolve().parents[3]
FAULTS = ROOT / "tests" / "faults"
BIN = Path(sys.executable).parent
MODEL = ROOT.parent / "shared" / "models" / "yolov8n_int8.onnx"
DAGSTER_MODULE = os.environ.get("CHAOS_DAGSTER_MODULE", "tgmed_orchestrator.definitions")
# faster step start-up than the default spawn (each step process imports Dagster once
# instead of from scratch); the same job, executor and retries as a user's run
RUN_WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")
FORKSERVER = {"execution": {"config": {"multiprocess": {"start_method": {"forkserver": {}}}}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    """A timestamped line; lines of docker mode's thread (beside the local scenarios)
    say so."""
    thread = threading.current_thread()
    where = "" if thread is threading.main_thread() else f" {thread.name}"
    print(f"[chaos {time.strftime('%H:%M:%S')}{where}] {message}", flush=True)


@dataclass
class Outcome:
    """One finished (or abandoned) run: its status, events and timing."""

    run: Run
    events: EventLog
    seconds: float

    @property
    def status(self) -> str:
        return self.run.status


def _random_session() -> str:
    """A well-formed Telethon StringSession with a random authorization key (the
    scraper checks the form before anything dials)."""
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(secrets.token_bytes(256))
    return session.save()


@dataclass
class TestSecrets:
    """Random values for every secret the platform reads; none may appear anywhere."""

    database_password: str = field(default_factory=lambda: "dbpw-" + secrets.token_hex(12))
    telegram_api_hash: str = field(default_factory=lambda: "tghash-" + secrets.token_hex(12))
    telegram_session: str = field(default_factory=lambda: _random_session())
    api_db_password: str = field(default_factory=lambda: "apipw-" + secrets.token_hex(12))
    webhook_token: str = field(default_factory=lambda: "hook-" + secrets.token_hex(12))
    # docker mode: Dagster's storage role and the server's superuser (compose's roles)
    storage_password: str = field(default_factory=lambda: "dagpw-" + secrets.token_hex(12))
    superuser_password: str = field(default_factory=lambda: "pgpw-" + secrets.token_hex(12))

    def values(self) -> dict[str, str]:
        return dict(vars(self))


class LocalPlatform:
    mode = "local"

    def __init__(self, workdir: Path, posts_per_channel: int = 12) -> None:
        self.workdir = workdir
        self.session = secrets.token_hex(6)
        self.secrets = TestSecrets()
        self.sample = workdir / "sample"
        self.exports = workdir / "exports"
        self.lake = workdir / "lake"
        self.pgdata = workdir / "pg"
        self.home = workdir / "dagster"
        self.logs = workdir / "logs"
        self.dbt_target = workdir / "dbt-target"
        self.posts_per_channel = posts_per_channel
        self.port = free_port()
        self.api = DagsterClient(f"http://127.0.0.1:{self.port}")
        self.receiver = AlertReceiver(url_path=f"/alerts/{self.secrets.webhook_token}")
        self.server_url = ""
        self.url = ""
        self.dagster: subprocess.Popen | None = None
        self.run_config: dict[str, Any] = FORKSERVER
        self.extra_env: dict[str, str] = {}
        # the fake Telegram's configuration (chaos/fake_telegram.py), read by the
        # scraper stage at start: scenarios rewrite it before a run
        self.telegram_config = workdir / "fake-telegram.json"
        self.telegram_calls = workdir / "fake-telegram-calls.jsonl"

    # --- set-up ---------------------------------------------------------------------
    def prepare(self) -> None:
        for folder in (self.logs, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(BIN / "tgmed-sample"),
                "--out",
                str(self.sample),
                "--posts-per-channel",
                str(self.posts_per_channel),
            ],
            check=True,
            capture_output=True,
        )
        shutil.copytree(self.sample / "exports", self.exports)
        self.fake_telegram({"chaosa": 12})
        self.start_database()
        shutil.copy(
            ROOT / "orchestrator" / "deploy" / "dagster.local.yaml", self.home / "dagster.yaml"
        )

    def start_database(self) -> None:
        from tgmed_devdb.server import create_database, start

        self.server_url = start(self.pgdata)
        url = create_database(self.server_url, "tgmed")
        # the embedded server trusts its socket; the password is there to be kept secret
        self.url = url.replace("postgres:@", f"postgres:{self.secrets.database_password}@", 1)

    def stop_database(self) -> None:
        from tgmed_devdb.server import stop

        stop(self.pgdata)

    def restart_database(self) -> float:
        """`pg_ctl restart -m fast`: every session is terminated, the server starts again
        with its own options (same socket); returns how long that took."""
        import pgserver

        started = time.monotonic()
        owner = self.pgdata.resolve().owner()
        pgserver.pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=self.pgdata.resolve(),
            user=owner if owner != "root" else None,
        )
        return time.monotonic() - started

    def fake_telegram(self, channels: dict[str, int], **schedule: Any) -> list[str]:
        """Configure the fake Telegram for the next runs: channels (name -> messages) and
        the FloodWait schedule (fake_telegram.py); returns the channel names."""
        import json

        config = {
            "channels": {name: {"messages": count} for name, count in channels.items()},
            "calls_file": str(self.telegram_calls),
            **schedule,
        }
        self.telegram_config.write_text(json.dumps(config), encoding="utf-8")
        self.telegram_calls.unlink(missing_ok=True)
        return sorted(channels)

    def telegram_run_config(self, channels: list[str]) -> dict[str, Any]:
        """Run configuration that scrapes these channels from (the fake) Telegram."""
        scrape = {"telegram_lake": {"config": {"source": "telegram", "channels": channels}}}
        return {**self.run_config, "ops": scrape}

    def mount_small_lake(self, size_bytes: int) -> None:
        """An empty tmpfs of this size as the lake (root only)."""
        shutil.rmtree(self.lake, ignore_errors=True)
        self.lake.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(self.lake)],
            check=True,
            capture_output=True,
        )

    def unmount_lake(self) -> None:
        subprocess.run(["umount", str(self.lake)], check=False, capture_output=True)
        shutil.rmtree(self.lake, ignore_errors=True)

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("TGMED_", "DAGSTER_"))}
        for name in ("DATABASE_URL", "LAKE_DIR", "ALERT_WEBHOOK_URL", "API_DATABASE_URL"):
            keep.pop(name, None)
        return {
            **keep,
            CHAOS_MARKER: self.session,
            "PYTHONUNBUFFERED": "1",
            # hooks/sitecustomize.py gives the scraper stage the fake Telegram client
            "PYTHONPATH": os.pathsep.join(
                [str(FAULTS / "hooks"), str(FAULTS), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
            "TGMED_CHAOS_TELEGRAM": str(self.telegram_config),
            "DAGSTER_HOME": str(self.home),
            "LAKE_DIR": str(self.lake),
            "DATABASE_URL": self.url,
            "TGMED_LAUNCH_MODE": "local",
            "TGMED_SCRAPE_SOURCE": "export",
            "TGMED_EXPORT_ROOT": str(self.exports),
            "TGMED_CHANNELS_FILE": str(ROOT / "config" / "channels.txt"),
            "TGMED_YOLO_BIN": str(ROOT / ".venv-yolo" / "bin"),
            "TGMED_STAGE_RETRIES": "2",
            "TGMED_STAGE_RETRY_DELAY_SECONDS": "2",
            "DETECT_MODEL": str(MODEL),
            "DETECT_COMMIT_EVERY": "4",
            "YOLO_OFFLINE": "1",
            "YOLO_AUTOINSTALL": "false",
            "YOLO_CONFIG_DIR": str(self.workdir / "yolo-config"),
            "DBT_TARGET_PATH": str(self.dbt_target),
            "DBT_LOG_PATH": str(self.dbt_target / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TELEGRAM_API_ID": "12345",
            "TELEGRAM_API_HASH": self.secrets.telegram_api_hash,
            "TELEGRAM_SESSION": self.secrets.telegram_session,
            "API_DB_PASSWORD": self.secrets.api_db_password,
            "ALERT_WEBHOOK_URL": self.receiver.url,
            "ALERT_DAGSTER_UI_URL": f"http://127.0.0.1:{self.port}",
            **self.extra_env,
        }

    def start(self) -> None:
        """`dagster dev` (webserver, daemon, code server) over this platform's instance."""
        log(f"starting Dagster (local mode) on :{self.port}, work folder {self.workdir}")
        output = (self.logs / "dagster-dev.log").open("ab")
        self.dagster = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-m",
                DAGSTER_MODULE,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=self.workdir,  # no .env of a checkout is read
            env=self.env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        self.api.wait_ready(JOB, timeout=300)

    def stop(self) -> None:
        if self.dagster is None:
            return
        stop_group(self.dagster.pid, 40, leader=self.dagster)
        self.dagster = None
        # a run killed by a scenario may leave processes outside the group: the marker
        # finds them (only this session's)
        kill_all(leftover_processes(self.session))

    def restart(self) -> None:
        self.stop()
        self.start()

    def crash(self, run_id: str) -> list[int]:
        """Scenario 8: every process of this platform (`dagster dev` and all it started:
        webserver, daemon, code server, the run worker, steps, stages) and the embedded
        PostgreSQL, frozen and SIGKILLed together."""
        roots = {p.pid for p in session_processes(self.session)}
        if (postmaster := postmaster_pid(self.pgdata)) is not None:
            roots.add(postmaster)
        killed = crash(roots)
        if self.dagster is not None:
            self.dagster.wait(timeout=30)
            self.dagster = None
        if alive := wait_dead(killed):
            raise RuntimeError(f"still running after SIGKILL: {alive}")
        return killed

    def start_after_crash(self) -> None:
        """The platform started again as a user would: PostgreSQL, then `dagster dev`."""
        self.start_database()
        self.start()

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self.stop_database()
        self.receiver.close()

    # --- data -----------------------------------------------------------------------
    def reset_data(self) -> None:
        """An empty lake and an empty warehouse (Dagster's run history stays)."""
        from tgmed_devdb.server import create_database

        shutil.rmtree(self.lake, ignore_errors=True)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists tgmed with (force)"))
        create_database(self.server_url, "tgmed")

    def run_worker_pid(self, run_id: str, events: EventLog) -> int | None:
        """The run worker's pid, as the run's event log reports it."""
        for message in events.messages():
            if match := RUN_WORKER_PID.search(message):
                return int(match.group(1))
        return None

    def wait_no_leftovers(self, timeout: float) -> list[str]:
        left = wait_no_leftover_processes(self.session, timeout)
        return [f"process {p.pid} {p.cmdline[:160]}" for p in left]

    def clear_leftovers(self) -> None:
        kill_all(leftover_processes(self.session))

    def stage_processes(self) -> dict[int, str]:
        """pid -> command of every stage process of this platform's runs."""
        from chaos.progress import stage_leaders

        return stage_leaders(self.dagster.pid) if self.dagster else {}

    def snapshot(self) -> Snapshot:
        return snapshot(self.lake, self.url, ROOT / "dbt")

    # --- runs -----------------------------------------------------------------------
    def launch(self, run_config: dict[str, Any] | None = None, job: str | None = None) -> str:
        config = self.run_config if run_config is None else run_config
        try:
            return self.api.launch(job or JOB, config)
        except Exception as error:
            if config and "RunConfigValidationInvalid" in str(error):
                # the job's executor no longer takes this configuration: its defaults
                log("the job refused the forkserver executor configuration; using defaults")
                self.run_config = {}
                return self.api.launch(job or JOB, {})
            raise

    def wait(self, run_id: str, timeout: float = 900) -> Outcome:
        started = time.monotonic()
        run = self.wait_status(run_id, timeout)
        return Outcome(run, self.api.events(run_id), time.monotonic() - started)

    def run(self, timeout: float = 900, **launch: Any) -> Outcome:
        return self.wait(self.launch(**launch), timeout)

    def wait_status(self, run_id: str, timeout: float) -> Run:
        return finished_or_current(self.api, run_id, timeout, poll=0.5)

    def captured_logs(self) -> list[Path]:
        """Every log file this platform wrote: Dagster's own output, the runs' compute
        logs (stage output), dbt's log."""
        files = [p for p in self.logs.rglob("*") if p.is_file()]
        files += [p for p in (self.home / "storage").rglob("*") if p.is_file()]
        files += [p for p in (self.home / "logs").rglob("*") if p.is_file()]
        files += [p for p in self.dbt_target.rglob("*.log") if p.is_file()]
        return files


__all__ = ["FINISHED", "LocalPlatform", "Outcome", "log"]
