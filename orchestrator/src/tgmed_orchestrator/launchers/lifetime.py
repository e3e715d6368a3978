"""Nothing of a run outlives it: every stage command runs under coreutils `timeout`, in
local mode dies with its step process, and a step process exits when its run has ended
(found by the fault suite, docs/reliability.md)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from typing import Any

KILL_AFTER_SECONDS = 15
TIMEOUT_EXIT = 124  # coreutils timeout: the command ran past its time and was stopped


def with_timeout(argv: list[str], seconds: float) -> list[str]:
    return ["timeout", f"--kill-after={KILL_AFTER_SECONDS}", f"{seconds:g}", *argv]


def signal_exit_code(code: int | None) -> int | None:
    """A process killed by a signal, as the shell and Docker report it: 128 + signal
    (Popen says -9 for kill -9; `timeout` re-raises its command's signal)."""
    return 128 - code if code is not None and code < 0 else code


def dying_with_parent(argv: list[str]) -> list[str]:
    """The command under `setpriv --pdeathsig KILL` (util-linux), when there is one: the
    kernel kills it when the process that started it dies, even by kill -9."""
    if shutil.which("setpriv") is None:
        return argv
    return ["setpriv", "--pdeathsig", "KILL", *argv]


RUN_WATCH_SECONDS = 2.0


def end_with_the_run(context: Any) -> Callable[[], None]:
    """While a stage runs, check every few seconds that its run is still going. A run
    whose worker process died (kill -9) is marked failed by the code server or by run
    monitoring, but the worker's step processes live on, and a step process that has
    lost its parent may never exit. When the run has ended, this step process exits (its
    stage, under PR_SET_PDEATHSIG, dies with it): nothing of a dead run runs beside the
    next one. Returns the function that ends the watch (called when the stage ended)."""
    done = threading.Event()
    try:
        instance, run_id = context.instance, context.run.run_id
    except Exception:  # a context built for a test, outside any run
        return done.set

    def watch() -> None:
        while not done.wait(RUN_WATCH_SECONDS):
            try:
                run = instance.get_run_by_id(run_id)
            except Exception as error:  # storage unreachable for a moment: ask again
                logging.getLogger(__name__).debug("run %s not read: %s", run_id, error)
                continue
            if run is not None and run.is_finished and not done.is_set():
                os._exit(1)

    thread = threading.Thread(target=watch, name="tgmed-run-watch", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(timeout=30)  # not a query after the step has moved on

    return stop
