"""What must not outlive a run: its processes (local mode) and containers (docker mode).

Every process the suite's Dagster starts inherits a marker variable (CHAOS_MARKER), so
the processes of this session are found wherever they were reparented, and nobody
else's are ever touched. Dagster's own long-lived services (webserver, daemon, code
server) are not leftovers; everything else still alive when no run is in flight is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass

import psutil

CHAOS_MARKER = "TGMED_CHAOS_SESSION"
# Dagster's services: `dagster dev` and what it starts (they live as long as the session)
SERVICES = re.compile(
    r"dagster(\.exe)? dev\b|dagster code-server start|dagster api grpc|dagster_webserver"
    r"|dagster-webserver|dagster._daemon|dagster-daemon|dagster\.daemon"
)
STAGE_CLIS = ("tgmed-scraper", "tgmed-yolo", "tgmed-loader", "tgmed-transform")


@dataclass(frozen=True)
class Proc:
    pid: int
    cmdline: str

    @property
    def stage(self) -> str | None:
        for name in STAGE_CLIS:
            if name in self.cmdline:
                return name
        return None


def session_processes(session: str) -> list[Proc]:
    """Every live process carrying this session's marker."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(CHAOS_MARKER) != session:
                continue
            found.append(Proc(process.pid, " ".join(process.info["cmdline"] or [])))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _service_helper(proc: Proc, services: set[int]) -> bool:
    """multiprocessing's resource tracker of a live service (the code server starts one
    for the run workers it spawns; it ends with its owner)."""
    if "multiprocessing.resource_tracker" not in proc.cmdline:
        return False
    try:
        return psutil.Process(proc.pid).ppid() in services
    except psutil.NoSuchProcess:
        return True


def leftover_processes(session: str) -> list[Proc]:
    """This session's processes that are not Dagster's services: run workers, step
    processes, stage processes (call when no run is in flight)."""
    procs = session_processes(session)
    services = {p.pid for p in procs if SERVICES.search(p.cmdline)}
    return [p for p in procs if p.pid not in services and not _service_helper(p, services)]


def wait_no_leftover_processes(session: str, timeout: float) -> list[Proc]:
    """Leftovers still alive after `timeout` seconds (a finished run's processes may need
    a moment to exit; anything alive after that is left behind)."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftover_processes(session)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def stage_processes(session: str, pattern: str) -> list[Proc]:
    """This session's live processes running a stage CLI whose command line matches."""
    regex = re.compile(pattern)
    return [p for p in session_processes(session) if p.stage and regex.search(p.cmdline)]


def kill_all(procs: list[Proc]) -> None:
    """The suite's own cleanup between scenarios (only processes of its session)."""
    for proc in procs:
        try:
            psutil.Process(proc.pid).kill()
        except psutil.NoSuchProcess:
            continue


def process_tree(root: int) -> set[int]:
    """A live process and all its descendants."""
    try:
        parent = psutil.Process(root)
        return {root} | {child.pid for child in parent.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def postmaster_pid(pgdata) -> int | None:
    """The embedded PostgreSQL's server process, from its postmaster.pid."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def crash(roots: set[int]) -> list[int]:
    """A power cut for these processes and all their descendants: every one is frozen
    (SIGSTOP) until no new one appears, then all are SIGKILLed, so none sees another
    die and cleans up after it. Returns the pids killed."""
    frozen: set[int] = set()
    while True:
        found = set().union(*(process_tree(pid) for pid in roots)) if roots else set()
        new = found - frozen
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= new
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(frozen)


def wait_dead(pids: list[int], timeout: float = 30) -> list[int]:
    """Those of `pids` still running (not zombies) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


# --- containers -------------------------------------------------------------------------


def run_containers(run_id: str, *, running_only: bool = False) -> list[dict]:
    """Containers of a Dagster run (its run worker and its stages), from `docker inspect`."""
    argv = ["docker", "ps", "-q", "--filter", f"label=dagster/run-id={run_id}"]
    if not running_only:
        argv.insert(2, "-a")
    ids = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    # the DockerRunLauncher labels its run container with the run id as well
    more = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dagster/run_id={run_id}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    ids = sorted(set(ids + more))
    if not ids:
        return []
    inspected = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, check=False
    )
    return json.loads(inspected.stdout or "[]")


def live_containers(label: str) -> list[dict]:
    """Running (or just created) containers carrying `label` (tgmed.run, tgmed.stage)."""
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label={label}",
            "--filter",
            "status=running",
            "--filter",
            "status=created",
            "--filter",
            "status=restarting",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    inspected = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, check=False
    )
    return json.loads(inspected.stdout or "[]")
