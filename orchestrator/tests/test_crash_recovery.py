"""The whole local platform killed mid-run (issue 30): `make pipeline`'s process tree
(make, the launch command, Dagster's code server and daemon, the run worker, its step
processes, the stage processes) and the embedded PostgreSQL are frozen and killed with
SIGKILL at once, as a power cut or the OOM killer would leave them. `make pipeline` is
started again: the dead run must be marked FAILURE with its reason within 60 s of that
start (it held the warehouse slot, so the new run waits behind it until then), the new
run must succeed, and the lake and the warehouse must equal a clean run's.

The kill is placed by progress (the first step's `ok` line, then the run worker's
recorded pid), never by a delay.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "faults"))

# the fault suite's own helpers
from chaos.leftovers import crash, postmaster_pid, wait_dead  # noqa: E402
from chaos.snapshot import compare, snapshot  # noqa: E402

pytestmark = pytest.mark.timeout(1500)
RECOVERY_BOUND_SECONDS = 60
BIN = Path(sys.executable).parent


class Pipeline:
    """`make pipeline` with its own lake, PostgreSQL and Dagster instance."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.output = root / f"{name}.out"
        self.dirs = {
            "LAKE_DIR": root / "lake",
            "PGDATA": root / "pg",
            "DAGSTER_HOME": root / "dagster",
            "LOG_DIR": root / "logs",
        }
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MAKEFLAGS")}
        env.update({k: str(v) for k, v in self.dirs.items()})
        env["DBT_TARGET_PATH"] = str(self.root / "dbt-target")
        env["DBT_LOG_PATH"] = str(self.root / "dbt-target" / "logs")
        self.started = time.time()
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "pipeline"],
            cwd=ROOT,
            env=env,
            stdout=self.output.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def wait_for(self, pattern: str) -> re.Match:
        while not (found := re.search(pattern, self.text(), re.MULTILINE)):
            assert self.process.poll() is None, f"make pipeline ended first:\n{self.text()}"
            time.sleep(0.2)
        return found

    def finish(self) -> int:
        return self.process.wait()

    def url(self) -> str:
        done = subprocess.run(
            [str(BIN / "tgmed-devdb"), "start", "--pgdata", str(self.dirs["PGDATA"])],
            capture_output=True,
            text=True,
            check=True,
        )
        return re.search(r"^DATABASE_URL=(\S+)", done.stdout, re.MULTILINE)[1]

    def snapshot(self):
        return snapshot(self.dirs["LAKE_DIR"], self.url(), ROOT / "dbt")

    def stop_database(self) -> None:
        subprocess.run(
            [str(BIN / "tgmed-devdb"), "stop", "--pgdata", str(self.dirs["PGDATA"])],
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="module")
def clean(yolo_bin, tmp_path_factory):
    pipeline = Pipeline(tmp_path_factory.mktemp("clean"), "clean")
    pipeline.start()
    assert pipeline.finish() == 0, pipeline.text()
    try:
        yield pipeline.snapshot()
    finally:
        pipeline.stop_database()


def test_a_pipeline_killed_whole_is_failed_and_the_next_run_recovers(clean, tmp_path):
    pipeline = Pipeline(tmp_path, "pipeline")
    pipeline.start()
    run_id = pipeline.wait_for(r"^run (\S+) of telegram_pipeline submitted")[1]
    pipeline.wait_for(r"^  ok ")  # the first step has ended: stages of later steps run
    killed = crash({pipeline.process.pid, postmaster_pid(pipeline.dirs["PGDATA"])})
    pipeline.process.wait()
    assert not wait_dead(killed), f"still running after SIGKILL: {wait_dead(killed, 0)}"
    assert len(killed) >= 6, f"expected the whole tree, killed {killed}"

    pipeline.start()  # again, after the crash: PostgreSQL comes back from its kill
    home = pipeline.dirs["DAGSTER_HOME"]
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            while True:
                run = instance.get_run_by_id(run_id)
                if run.status == DagsterRunStatus.FAILURE:
                    failed_after = time.time() - pipeline.started
                    break
                assert run.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING), (
                    run.status
                )
                assert time.time() - pipeline.started < RECOVERY_BOUND_SECONDS + 30, (
                    f"run {run_id} still {run.status.value}:\n{pipeline.text()}"
                )
                time.sleep(0.5)
        code = pipeline.finish()
        output = pipeline.text()
        assert failed_after <= RECOVERY_BOUND_SECONDS, (failed_after, output)
        assert code == 0, output
        second = output.split(f"run {run_id} of telegram_pipeline submitted", 1)[1]
        # the terminal said how the dead run ended (found at the start, or while the new
        # run was queued behind it), and why
        ended = re.search(rf"^telegram_pipeline {run_id[:8]} ended: FAILURE: (.+)$", second, re.M)
        assert ended, second
        assert "run worker" in ended[1] and "no longer exists" in ended[1], ended[1]
        assert "of telegram_pipeline: SUCCESS" in second
        difference = compare(clean, pipeline.snapshot())
        assert difference.equal, difference.describe()
    finally:
        pipeline.stop_database()
