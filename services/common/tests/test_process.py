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
