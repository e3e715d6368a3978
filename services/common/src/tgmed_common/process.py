"""Child processes that do not outlive their parent. A stage's worker processes (and,
in the orchestrator's local mode, the stage process itself) ask the kernel to SIGKILL
them when the process that started them dies, even by kill -9, so nothing is left
writing the lake or holding a database connection after its owner is gone (Linux:
PR_SET_PDEATHSIG; elsewhere nothing changes). A process group stopped as a whole
(`stop_group`), and stop signals turned into KeyboardInterrupt."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
_prctl = (
    getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None
)


def die_with_parent(parent: int | None = None) -> None:
    """From now on, this process is killed when its parent dies. `parent`: the pid the
    parent had when it started this process; if it is already gone (the parent died
    before this call), exit at once. Safe between fork and exec (no allocation)."""
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What asks a foreground command to stop: Ctrl-C, a service manager or a CI timeout,
a closed terminal."""


_stopping = False


def _interrupt(number: int, _frame: object) -> None:
    """The first stop signal raises KeyboardInterrupt; any other before the stop has
    made them ignored (`ignore_stop_signals`) changes nothing. Regression (CI): a
    SIGTERM to the process group reached the launch command twice, the second inside
    the `except KeyboardInterrupt` that stops what it started, and cut that stop short,
    leaving its code server and daemon running."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise KeyboardInterrupt(signal.Signals(number).name)


def stop_signals_interrupt() -> None:
    """From now on SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt where the code is,
    once: one path (the `except KeyboardInterrupt` that cancels and stops what was
    started) for every way of being asked to stop."""
    global _stopping
    _stopping = False
    for number in STOP_SIGNALS:
        signal.signal(number, _interrupt)


def ignore_stop_signals() -> None:
    """While stopping: a second signal must not cut the stop short."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group `pgid` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float, leader=None) -> None:
    """SIGTERM to a process group, then SIGKILL to whatever of it is left after `grace`
    seconds. `leader`: the group leader's Popen when it is our child (reaped, so that its
    zombie does not keep the group alive)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if leader is not None:
        leader.wait()
