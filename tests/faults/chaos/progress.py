"""Where a stage process is in its work, measured by what it has written (bytes written
through write()/send(): lake files, rows sent to PostgreSQL by COPY, log lines), summed
over the process and the workers it forked. The clean run records each stage's total;
a trial draws a point in [0, total) and kills the stage when it has written that much,
however fast or slow the machine is."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from chaos.leftovers import STAGE_CLIS

POLL = 0.02


def stage_command(argv: list[str]) -> str | None:
    """`tgmed-loader load messages` from `[.../python, .../bin/tgmed-loader, load, ...]`
    (the form the launcher logs: the CLI's name and its arguments)."""
    for index, part in enumerate(argv[:2]):
        name = Path(part).name
        if name in STAGE_CLIS:
            return " ".join([name, *argv[index + 1 :]])
    return None


def without_timeout(argv: list[str]) -> list[str]:
    """The command coreutils `timeout` runs, from a stage container's command
    (`timeout --kill-after=15 3600 tgmed-scraper ...`: every stage runs under it since
    the stage timeouts; options are one word each there)."""
    if not argv or Path(argv[0]).name != "timeout":
        return argv
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[1:]
    return rest[1:]  # after the duration


def written(process: psutil.Process) -> int:
    """Bytes written by the process and its children so far."""
    total = 0
    try:
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for item in [process, *children]:
        try:
            total += item.io_counters().write_chars
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def stage_leaders(root: int) -> dict[int, str]:
    """pid -> command of every stage process under `root` (not their forked workers)."""
    try:
        tree = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    found: dict[int, str] = {}
    for process in tree:
        try:
            command = stage_command(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if command:
            found[process.pid] = command
    # a forked worker has the same command line as its parent stage process
    leaders = {}
    for pid, command in found.items():
        try:
            parent = psutil.Process(pid).ppid()
        except psutil.NoSuchProcess:
            continue
        if found.get(parent) != command:
            leaders[pid] = command
    return leaders


Finder = Callable[[], dict[int, str]]


@dataclass
class StageWatcher:
    """Samples every stage process (`find()`: pid -> command) while a run goes: the most
    each stage command wrote (its total, once it has exited)."""

    find: Finder
    totals: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> StageWatcher:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        known: dict[int, tuple[str, psutil.Process]] = {}
        while not self._stop.is_set():
            for pid, command in self.find().items():
                if pid not in known:
                    try:
                        known[pid] = (command, psutil.Process(pid))
                    except psutil.NoSuchProcess:
                        continue
            for pid, (command, process) in list(known.items()):
                try:
                    done = written(process)
                except psutil.Error:
                    done = 0
                if not process.is_running():
                    del known[pid]
                    continue
                self.totals[command] = max(self.totals.get(command, 0), done)
            time.sleep(POLL)


def wait_until_written(
    find: Finder,
    command: str,
    target: int,
    finished: Callable[[], bool],
    *,
    timeout: float = 900,
) -> tuple[psutil.Process | None, int]:
    """Wait for the stage process running `command` (among `find()`) to have written
    `target` bytes. Returns (the process, bytes written), or (None, 0) when the process
    ended first or `finished()` says the run is over."""
    deadline = time.monotonic() + timeout
    process: psutil.Process | None = None
    last_check = 0.0
    while time.monotonic() < deadline:
        if process is None:
            for pid, found in find().items():
                if found == command:
                    process = psutil.Process(pid)
                    break
        if process is not None:
            try:
                done = written(process)
                if done >= target:
                    return process, done
            except psutil.NoSuchProcess:
                return None, 0
            if not process.is_running():
                return None, 0
        now = time.monotonic()
        if now - last_check > 1.0:  # the run's status over HTTP: not every tick
            last_check = now
            if finished():
                return None, 0
        time.sleep(POLL if process is not None else 0.1)
    return None, 0


# what the local launcher puts between a step process and its stage (the stage's
# timeout; `setpriv` and `env` exec, so they are never a process of their own for long)
WRAPPERS = {"timeout", "setpriv", "env"}


def step_process_of(process: psutil.Process) -> psutil.Process:
    """The Dagster step process that launched a stage: the stage's parent, above the
    launcher's `timeout`."""
    parent = psutil.Process(process.ppid())
    while parent.name() in WRAPPERS:
        parent = psutil.Process(parent.ppid())
    return parent


def kill_when_written(
    find: Finder,
    command: str,
    target: int,
    finished: Callable[[], bool],
    *,
    parent: bool = False,
    timeout: float = 900,
) -> tuple[int | None, int]:
    """SIGKILL the stage process running `command` (or, with `parent`, the Dagster step
    process that launched it) once it has written `target` bytes. Returns (pid killed or
    None, bytes written at the kill)."""
    process, done = wait_until_written(find, command, target, finished, timeout=timeout)
    if process is None:
        return None, 0
    try:
        victim = step_process_of(process) if parent else process
        if victim.status() == psutil.STATUS_ZOMBIE:  # it had exited: nothing to kill
            return None, 0
        victim.kill()
    except psutil.NoSuchProcess:
        return None, 0
    return victim.pid, done
