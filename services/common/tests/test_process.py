"""die_with_parent: a child started with it is killed when its parent dies, even when
the parent is killed with SIGKILL (nothing of a dead stage or step is left running)."""

import subprocess
import sys

import psutil
import pytest

PARENT = """
import os, subprocess, sys, time
from tgmed_common.process import die_with_parent
me = os.getpid()
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"],
    preexec_fn=lambda: die_with_parent(me) if sys.argv[1] == "yes" else None,
)
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("dies", ["yes", "no"])
def test_a_child_dies_with_its_parent_only_when_asked(dies):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, dies], stdout=subprocess.PIPE, text=True
    )
    child = psutil.Process(int(parent.stdout.readline()))
    parent.kill()
    parent.wait()
    try:
        _, alive = psutil.wait_procs([child], timeout=10 if dies == "yes" else 1)
        assert (alive == []) is (dies == "yes")
    finally:
        if child.is_running():
            child.kill()


STOPPING = """
import sys, time
from tgmed_common.process import ignore_stop_signals, stop_signals_interrupt
stop_signals_interrupt()
try:
    print("running", flush=True)
    time.sleep(600)
except KeyboardInterrupt as why:
    print(f"stopping after {why}", flush=True)
    sys.stdin.readline()  # what was started is being stopped: the test signals here
    ignore_stop_signals()
    print("stopped", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("second", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_second_stop_signal_does_not_cut_the_stop_short(second):
    """Regression (CI): a SIGTERM to the process group reached `tgmed-orchestrator
    launch` twice; the second, inside its `except KeyboardInterrupt`, left the code
    server and daemon it had started running. The second signal is sent while the
    child waits inside that block (for a line the test writes after it), whatever the
    machine's speed."""
    import signal

    process = subprocess.Popen(
        [sys.executable, "-c", STOPPING],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "running\n"
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline() == "stopping after SIGTERM\n", process.stderr.read()
    process.send_signal(getattr(signal, second))
    process.stdin.write("go on\n")
    process.stdin.flush()
    assert process.stdout.readline() == "stopped\n", process.stderr.read()
    assert process.wait(timeout=30) == 130
