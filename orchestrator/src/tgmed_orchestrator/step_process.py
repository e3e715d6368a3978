"""A step process lives no longer than the run worker that started it.

Dagster's multiprocess executor runs each step in a child process of the run worker
(`spawn`, or a fork of Python's forkserver). When the run worker is killed (kill -9, the
OOM killer), run monitoring marks the run failed, but nothing ends its step processes:
one that is between stages, in a check, or blocked at exit on the event queue its parent
no longer reads lives on beside the next run; on `forkserver` it also keeps the
forkserver alive (every child holds the forkserver's liveness pipe). Found by the fault
suite (docs/reliability.md, scenario 2).

Importing the code location in a step process starts a watch on the parent's sentinel
(the pipe multiprocessing gives every child; it reads EOF when the parent is gone, under
either start method): the step process exits at once, and the stage it may be running
dies with it (PR_SET_PDEATHSIG, launchers.dying_with_parent). No polling, no query.
In any other process (the code server, a run worker, tests' in-process runs) there is no
multiprocessing parent and nothing is watched.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

EXIT_CODE = 137  # as if killed with the run worker: 128 + SIGKILL

_watching: threading.Thread | None = None


def exit_with_the_run_worker() -> bool:
    """Exit this process when its multiprocessing parent dies; True when a watch runs
    (now or from an earlier call)."""
    global _watching
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    if _watching is not None and _watching.is_alive():
        return True

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes: it died
        os._exit(EXIT_CODE)

    _watching = threading.Thread(target=watch, name="tgmed-run-worker-watch", daemon=True)
    _watching.start()
    return True
