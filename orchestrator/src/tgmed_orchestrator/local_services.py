"""The Dagster a run submitted from a shell needs when nobody serves this instance yet:
`dagster dev` (its webserver, daemon and code server), Dagster's own command for one
machine, on a free local port. Runs are submitted to a webserver's GraphQL API, as the
UI, compose and Kubernetes submit them (submit.py).

Who serves this instance's runs, in this order:

1. another `tgmed-orchestrator launch` holding the instance's services lock: its
   `dagster dev`, at the address in the state file, serves every run submitted to it and
   keeps serving until the queue is empty;
2. a live daemon of someone else (`make serve`'s `dagster dev`): its heartbeat is recent
   and it is not one somebody stopped; runs go to the UI that serve.sh records in the UI
   file (else ALERT_DAGSTER_UI_URL's address);
3. otherwise this process takes the lock and starts `dagster dev` in its own process
   group (so a Ctrl-C in the terminal reaches this process, which stops it), logging to
   DAGSTER_HOME/tgmed-logs/.

A launch command killed with -9 cannot stop what it started: the next one to take the
lock finds its process group in the state file and stops it first. Its daemon's last
heartbeat stays fresh for up to HEARTBEAT_FRESH_SECONDS after a kill: the state file
names that daemon (recorded once its first heartbeat appears), so the next command does
not take a dead daemon for a live one and wait on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dagster import DagsterInstance

from tgmed_common.process import group_alive, stop_group
from tgmed_orchestrator.dagster_client import DagsterClient, wait_until
from tgmed_orchestrator.settings import alert_settings

LOCATION_NAME = "tgmed"  # the UI's workspace (orchestrator/deploy/workspace*.yaml) says so too
DEFINITIONS_MODULE = "tgmed_orchestrator.definitions"
HEARTBEAT_FRESH_SECONDS = 45  # a daemon writes one for each of its loops every 30 s
STOP_GRACE_SECONDS = 30
START_SECONDS = 300  # until the webserver answers and its code location offers the job
LOCK_FILE = ".tgmed-services.lock"
STATE_FILE = ".tgmed-services.json"
STOPPED_FILE = ".tgmed-stopped-daemons.json"
UI_FILE = ".tgmed-ui.json"  # serve.sh: the address of the UI it runs for this instance
WORKSPACE_FILE = ".tgmed-workspace.yaml"


def dagster_bin(name: str) -> str:
    """A Dagster command of this environment (beside this Python), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed in this environment (make setup)")
    return found


def _stopped_daemons(home: Path) -> set[str]:
    with contextlib.suppress(OSError, ValueError):
        return set(json.loads((home / STOPPED_FILE).read_text()))
    return set()


def newest_heartbeat(instance: DagsterInstance):
    """The newest heartbeat of this instance's daemons, or None: one daemon process runs
    every loop (the run queue's among them), each beating with the daemon's id."""
    beats = [b for b in instance.get_daemon_heartbeats().values() if b.daemon_id]
    return max(beats, key=lambda b: b.timestamp, default=None)


def live_daemon(instance: DagsterInstance, home: Path) -> str | None:
    """A description of a live daemon serving this instance's queue, or None."""
    beat = newest_heartbeat(instance)
    if beat is None or beat.daemon_id in _stopped_daemons(home):
        return None
    age = time.time() - beat.timestamp
    return (
        f"a running Dagster daemon (heartbeat {age:.0f} s ago)"
        if age < HEARTBEAT_FRESH_SECONDS
        else None
    )


def mark_daemon_stopped(instance: DagsterInstance, home: Path, since: float) -> str | None:
    """Say that the daemon which wrote the queue's last heartbeat, if it started at or
    after `since` (epoch seconds), has stopped: its heartbeat stays fresh for up to
    HEARTBEAT_FRESH_SECONDS, and a launch in that window would otherwise wait on a dead
    daemon. Called by whoever stopped it (Services.stop, serve.sh via `tgmed-orchestrator
    daemon-stopped`). Returns the daemon's id, or None when the heartbeat is older."""
    beat = newest_heartbeat(instance)
    if beat is None or beat.timestamp < since:
        return None
    stopped = sorted(_stopped_daemons(home) | {beat.daemon_id})[-50:]
    (home / STOPPED_FILE).write_text(json.dumps(stopped))
    return beat.daemon_id


@dataclass
class Services:
    """A `dagster dev` started by this process; `stop()` ends it."""

    home: Path
    log_path: Path
    url: str
    started_at: float
    process: subprocess.Popen
    log: IO[bytes] | None = None
    daemon_id: str = ""

    def note_daemon(self, instance: DagsterInstance) -> None:
        """Record our daemon's id in the state file once it has written a heartbeat."""
        if self.daemon_id:
            return
        beat = newest_heartbeat(instance)
        if beat is None or beat.timestamp < self.started_at:
            return
        self.daemon_id = beat.daemon_id
        state = self.home / STATE_FILE
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads(state.read_text())
            recorded["daemon_id"] = self.daemon_id
            state.write_text(json.dumps(recorded))

    def dead(self) -> str | None:
        if self.process.poll() is not None:
            return f"dagster dev exited with {self.process.returncode} (see {self.log_path})"
        return None

    def wait_ready(self, job: str) -> DagsterClient:
        """A client of our webserver once its code location offers `job`."""
        client = DagsterClient(self.url, patience=0)

        def ready() -> bool:
            if problem := self.dead():
                raise RuntimeError(f"the Dagster services did not start: {problem}")
            try:
                client.wait_ready(job, timeout=0)  # one look
            except TimeoutError:
                return False
            return True

        wait_until(
            ready,
            START_SECONDS,
            f"dagster dev at {self.url} does not offer {job} (see {self.log_path})",
            poll=0.3,
        )
        return client

    def stop(self, instance: DagsterInstance | None) -> None:
        """`dagster dev` stopped (webserver, daemon, code server and its run workers: one
        process group), the state file removed. `instance`: where our daemon's heartbeat
        is marked stopped (None: it never got to start one)."""
        stop_group(self.process.pid, STOP_GRACE_SECONDS, leader=self.process)
        if instance is not None:
            mark_daemon_stopped(instance, self.home, self.started_at)
        (self.home / STATE_FILE).unlink(missing_ok=True)
        if self.log:
            self.log.close()


class ServicesLock:
    """The instance's services lock (flock: released by the kernel when its holder dies)."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self.handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def forget_dead_launch(home: Path) -> None:
    """Called by the holder of the lock: a state file left means its launch command died
    (a clean stop removes it), so its daemon, alive as an orphan or dead, serves nobody:
    its heartbeat no longer counts as a live daemon (its processes are stopped by
    start_services)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        daemon_id = json.loads((home / STATE_FILE).read_text())["daemon_id"]
        stopped = sorted(_stopped_daemons(home) | {daemon_id})[-50:]
        (home / STOPPED_FILE).write_text(json.dumps(stopped))


def _stop_leftovers(home: Path) -> list[int]:
    """Process groups a killed launch command left behind (its state file), stopped."""
    state = home / STATE_FILE
    try:
        groups = json.loads(state.read_text())["process_groups"]
    except (OSError, ValueError, KeyError):
        return []
    stopped = [pgid for pgid in groups if group_alive(pgid) and _is_dagster(pgid)]
    for pgid in stopped:
        stop_group(pgid, 10)
    state.unlink(missing_ok=True)
    return stopped


def _is_dagster(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"dagster" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_services(home: Path) -> Services:
    """Start `dagster dev` for this instance (the caller holds the lock)."""
    left = _stop_leftovers(home)
    logs = home / "tgmed-logs"  # not logs/: Dagster's telemetry may remove that one
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"launch-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    log = log_path.open("ab")
    if left:
        log.write(f"stopped leftover process groups {left}\n".encode())
    workspace = home / WORKSPACE_FILE
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        f"      module_name: {DEFINITIONS_MODULE}\n      location_name: {LOCATION_NAME}\n"
    )
    port = _free_port()
    # `dev_command is superseded` (by `dg dev`, not installed: dagster dev stays the
    # command); only that warning, as serve.sh: the stages' own warnings still show
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded",
    }
    process = subprocess.Popen(
        [
            dagster_bin("dagster"),
            *("dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)),
            *("--log-level", "warning"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    services = Services(home, log_path, url, time.time(), process, log=log)
    (home / STATE_FILE).write_text(
        json.dumps({"owner": os.getpid(), "process_groups": [process.pid], "url": url})
    )
    return services


def launch_url(home: Path) -> str | None:
    """The UI of the `dagster dev` that the launch command holding the lock started."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads((home / STATE_FILE).read_text())["url"])
    return None


def serving_url(home: Path) -> str:
    """The UI of someone else's live daemon (`make serve` records it), else the address
    alerts link to (ALERT_DAGSTER_UI_URL)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads((home / UI_FILE).read_text())["url"])
    return alert_settings().dagster_ui_url
