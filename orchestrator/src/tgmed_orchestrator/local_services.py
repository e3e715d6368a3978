"""The Dagster processes a run submitted from a shell needs when no `dagster dev` runs:
a code server (the code location, over a unix socket) and a daemon that takes runs off
the queue and launches them on that code server.

Who takes runs off this instance's queue, in this order:

1. another `tgmed-orchestrator launch` holding the instance's services lock: its daemon
   serves every queued run, and it keeps serving until the queue is empty;
2. a live daemon of someone else (`dagster dev` of `make serve`, a `dagster-daemon`):
   its heartbeat is recent and it is not one this module stopped;
3. otherwise this process takes the lock and starts a code server and a daemon, each in
   its own process group (so a Ctrl-C in the terminal reaches this process, which stops
   them in order), logging to DAGSTER_HOME/tgmed-logs/.

A launch command killed with -9 cannot stop what it started: the next one to take the
lock finds their process groups in the state file and stops them first. Its daemon's
last heartbeat stays fresh for up to HEARTBEAT_FRESH_SECONDS after a kill: the state
file names that daemon (recorded once its first heartbeat appears), so the next command
does not take a dead daemon for a live one and wait on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dagster import DagsterInstance

LOCATION_NAME = "tgmed"  # the UI's workspace (orchestrator/deploy/workspace*.yaml) says so too
DEFINITIONS_MODULE = "tgmed_orchestrator.definitions"
HEARTBEAT_FRESH_SECONDS = 45  # a daemon writes one for each of its loops every 30 s
STOP_GRACE_SECONDS = 30
LOCK_FILE = ".tgmed-services.lock"
STATE_FILE = ".tgmed-services.json"
STOPPED_FILE = ".tgmed-stopped-daemons.json"


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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float = STOP_GRACE_SECONDS, leader=None) -> None:
    """SIGTERM to a process group, then SIGKILL to whatever of it is left after `grace`.
    `leader`: the group leader's Popen when it is our child (reaped, so that its zombie
    does not keep the group alive)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not _group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if leader is not None:
        leader.wait()


@dataclass
class Services:
    """A code server and a daemon started by this process; `stop()` ends both."""

    home: Path
    log_path: Path
    folder: Path
    socket: Path
    workspace: Path
    started_at: float
    processes: list[subprocess.Popen] = field(default_factory=list)
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
        for process in self.processes:
            if process.poll() is not None:
                name = " ".join(Path(a).name for a in process.args[:3])
                return f"{name} exited with {process.returncode} (see {self.log_path})"
        return None

    def stop(self, instance: DagsterInstance | None) -> None:
        """Both processes stopped, the state file and socket folder removed. `instance`:
        where our daemon's heartbeat is marked stopped (None: no daemon was started)."""
        for process in reversed(self.processes):  # the daemon first, then the code server
            stop_group(process.pid, leader=process)
        if instance is not None:
            mark_daemon_stopped(instance, self.home, self.started_at)
        (self.home / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
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
    stopped = [pgid for pgid in groups if _group_alive(pgid) and _is_dagster(pgid)]
    for pgid in stopped:
        stop_group(pgid, grace=10)
    state.unlink(missing_ok=True)
    return stopped


def _is_dagster(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"dagster" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def start_services(home: Path) -> Services:
    """Start a code server and a daemon for this instance (the caller holds the lock)."""
    left = _stop_leftovers(home)
    logs = home / "tgmed-logs"  # not logs/: Dagster's telemetry may remove that one
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"launch-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    log = log_path.open("ab")
    if left:
        log.write(f"stopped leftover process groups {left}\n".encode())
    folder = Path(tempfile.mkdtemp(prefix="tgmed-dagster-"))  # a short path for the socket
    socket = folder / "code.sock"
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      socket: {socket}\n"
        f"      location_name: {LOCATION_NAME}\n"
    )
    services = Services(home, log_path, folder, socket, workspace, time.time(), log=log)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    common = {"stdout": log, "stderr": subprocess.STDOUT, "env": env, "start_new_session": True}
    services.processes.append(
        subprocess.Popen(
            [
                dagster_bin("dagster"),
                *("code-server", "start", "-m", DEFINITIONS_MODULE),
                *("--location-name", LOCATION_NAME, "--socket", str(socket)),
                *("--log-level", "warning"),
            ],
            stdin=subprocess.DEVNULL,
            **common,
        )
    )
    _record(home, services)
    # the daemon only once the code server listens: a daemon that finds no socket fails
    # the queued runs it takes (DagsterCodeLocationLoadError), it does not retry them
    try:
        wait_for_socket(services)
    except BaseException:
        services.stop(None)  # no daemon yet: nothing of it to mark
        raise
    services.processes.append(
        subprocess.Popen(
            [dagster_bin("dagster-daemon"), "run", "-w", str(workspace), "--log-level", "warning"],
            stdin=subprocess.DEVNULL,
            **common,
        )
    )
    _record(home, services)
    return services


def _record(home: Path, services: Services) -> None:
    """The state file: the process groups a killed launch command leaves to the next."""
    (home / STATE_FILE).write_text(
        json.dumps({"owner": os.getpid(), "process_groups": [p.pid for p in services.processes]})
    )


def wait_for_socket(services: Services) -> None:
    """Until the code server listens (or one of the processes has died)."""
    while not services.socket.exists():
        if problem := services.dead():
            raise RuntimeError(f"the Dagster services did not start: {problem}")
        time.sleep(0.1)
