"""Regression (fault suite, kill -9 of the loader stage): the loader's worker processes
outlived a loader killed by SIGKILL (the orchestrator's kill, the OOM killer), waiting
forever with a database connection each. They now die with it."""

import os
import subprocess
import sys
import time
from datetime import date, timedelta

import psutil


def test_workers_die_when_the_loader_is_killed(db_url, lake, helpers):
    for index in range(40):
        records = [helpers.message("chemed123", index * 500 + i) for i in range(1, 501)]
        helpers.write_file(lake, f"run-{index:04d}", records, date(2026, 10, 1) + timedelta(index))
    env = {**os.environ, "DATABASE_URL": db_url, "LAKE_DIR": str(lake.root), "LOADER_WORKERS": "2"}
    loader = subprocess.Popen(
        [sys.executable, "-m", "tgmed_loader.cli", "load", "messages"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while len(workers) < 2 and time.monotonic() < deadline and loader.poll() is None:
        workers = psutil.Process(loader.pid).children()
        time.sleep(0.05)
    assert len(workers) == 2, "the loader's workers never started"
    loader.kill()  # the loader alone, as the kernel's OOM killer would
    loader.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:  # the test's own cleanup
        worker.kill()
    assert alive == [], f"{len(alive)} workers outlived the loader"
