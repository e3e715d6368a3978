"""Runs started from a shell (`tgmed-orchestrator launch`, what `make pipeline` runs) go
through the code location and the run queue, like the UI's:

- a warehouse job submitted while another one runs waits in the queue (it is not
  started beside it), while a job without the tag starts at once; it starts after the
  first one has ended;
- the runs show on the job's page, in the Jobs list and in Overview's timeline (GraphQL
  of a webserver over the same instance, the queries the UI sends).

Every wait here ends on progress (a session blocked on a lock, a line the command
printed, a run's status, a process's exit), never on a delay.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from tgmed_common.process import stop_group
from tgmed_orchestrator.cli import check_ui
from tgmed_orchestrator.dagster_client import DagsterClient
from tgmed_orchestrator.local_services import STATE_FILE, UI_FILE, live_daemon

from .conftest import make_sample

pytestmark = pytest.mark.timeout(1200)  # a whole pipeline run, dbt included, on a slow host
ORCHESTRATOR = Path(__file__).parents[1]
REPOSITORY = "__repository__@tgmed"


class Launch:
    """`tgmed-orchestrator launch JOB` as a process, its output in a file."""

    def __init__(self, job: str, env: dict[str, str], folder: Path) -> None:
        self.job = job
        self.output = folder / f"launch-{job}.out"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tgmed-orchestrator"), "launch", job],
            env=env,
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for_line(self, pattern: str) -> re.Match:
        """Until the command prints a line matching `pattern` (or ends without it)."""
        while True:
            if found := re.search(pattern, self.text(), re.MULTILINE):
                return found
            try:
                self.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            if found := re.search(pattern, self.text(), re.MULTILINE):
                return found
            raise AssertionError(f"launch {self.job} ended without {pattern!r}:\n{self.text()}")

    @property
    def run_id(self) -> str:
        return self.wait_for_line(rf"^run (\S+) of {self.job} submitted")[1]

    def finish(self) -> int:
        return self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def blocked_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and wait_event_type = 'Lock'"
        ).fetchone()[0]


@pytest.fixture(scope="module")
def submitted(yolo_bin, fresh_database, tmp_path_factory):
    """telegram_pipeline launched while the test holds a lock its load step needs; then
    `enrich` (warehouse tag) and `cleanup` (no tag) launched while it is blocked."""
    folder, model = yolo_bin
    root = tmp_path_factory.mktemp("submitted")
    exports = make_sample(root / "sample", posts=6)
    url = fresh_database("submitted")
    home = root / "dagster"
    home.mkdir()
    shutil.copy(ORCHESTRATOR / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKE_DIR": str(root / "lake"),
        "DATABASE_URL": url,
        "DETECT_MODEL": model,
        "TGMED_YOLO_BIN": folder,
        "DBT_TARGET_PATH": str(root / "dbt-target"),
        "DBT_LOG_PATH": str(root / "dbt-target" / "logs"),
        "TGMED_LAUNCH_MODE": "local",
        "TGMED_SCRAPE_SOURCE": "export",
        "TGMED_EXPORT_ROOT": str(exports),
    }
    loader = Path(sys.executable).parent / "tgmed-loader"
    subprocess.run([str(loader), "init-db"], env=env, check=True, capture_output=True)
    launches: list[Launch] = []
    with psycopg.connect(url) as holder:
        holder.execute("lock table raw.load_audit in access exclusive mode")
        pipeline = Launch("telegram_pipeline", env, root)
        launches.append(pipeline)
        try:
            while not blocked_sessions(url):  # the pipeline's warehouse step waits on us
                assert pipeline.process.poll() is None, pipeline.text()
                time.sleep(0.2)
            enrich = Launch("enrich", env, root)
            launches.append(enrich)
            enrich.wait_for_line(r"^queued behind telegram_pipeline")
            cleanup = Launch("cleanup", env, root)
            launches.append(cleanup)
            cleanup_code = cleanup.finish()  # queued after enrich, started before it
            with instance_of(home) as instance:
                enrich_while_blocked = instance.get_run_by_id(enrich.run_id).status
            holder.rollback()  # the pipeline may go on
            codes = {"telegram_pipeline": pipeline.finish(), "enrich": enrich.finish()}
        finally:
            for launch in launches:
                launch.kill()
    with instance_of(home) as instance:
        records = {launch.job: instance.get_run_record_by_id(launch.run_id) for launch in launches}
    return {
        "home": home,
        "env": env,
        "codes": {**codes, "cleanup": cleanup_code},
        "records": records,
        "enrich_while_blocked": enrich_while_blocked,
        "outputs": {launch.job: launch.text() for launch in launches},
    }


@contextlib.contextmanager
def instance_of(home: Path) -> Iterator[DagsterInstance]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            yield instance


def test_a_warehouse_run_waits_in_the_queue_behind_the_running_one(submitted):
    assert submitted["codes"] == {"telegram_pipeline": 0, "enrich": 0, "cleanup": 0}, submitted[
        "outputs"
    ]
    records = submitted["records"]
    # a run without the tag was taken off the queue after enrich was put on it ...
    assert records["cleanup"].create_timestamp > records["enrich"].create_timestamp
    # ... while enrich stayed queued: the tag limit, not an idle daemon, held it
    assert submitted["enrich_while_blocked"] == DagsterRunStatus.QUEUED
    # and it started only after the pipeline had ended
    assert records["enrich"].start_time >= records["telegram_pipeline"].end_time
    assert records["cleanup"].end_time < records["telegram_pipeline"].end_time
    for record in records.values():
        assert record.dagster_run.status == DagsterRunStatus.SUCCESS
        origin = record.dagster_run.remote_job_origin  # created through the code location
        assert origin is not None and origin.repository_origin.get_label() == REPOSITORY


def test_the_command_prints_a_line_per_step_with_its_counts(submitted):
    text = submitted["outputs"]["telegram_pipeline"]
    # a step with a few materializations lists each with its numbers ...
    assert re.search(r"^  ok      telegram_lake \(\d+ s\)$", text, re.M)
    assert re.search(r"^ +lake/telegram_messages \[chemed123\]: messages \d+", text, re.M)
    assert re.search(r"^ +raw/telegram_messages: .*rows_loaded \d+", text, re.M)
    # ... dbt's (one per model) counts them, and its checks
    assert re.search(r"^  ok      dbt_models \(\d+ s\): \d+ assets materialized$", text, re.M)
    assert re.search(r"^ +checks: \d+ passed$", text, re.M)
    # the sample's posts are old: the freshness check (severity WARN) warns by name, and
    # no blocking check failed
    assert re.search(
        r"^  ok      \S+newest_post_per_channel \(\d+ s\): "
        r"checks: 0 passed; warning newest_post_per_channel \(see the UI\)$",
        text,
        re.M,
    )
    # the steps that check nothing was set aside: a line each
    assert re.search(
        r"^  ok      raw__telegram_messages_nothing_set_aside \(\d+ s\): checks: 1 passed$",
        text,
        re.M,
    )
    assert "FAILED" not in text
    assert re.search(r"^run \S+ of telegram_pipeline: SUCCESS$", text, re.M)
    assert "DEBUG" not in text and "\x1b[" not in text  # no Dagster debug lines, no colours
    assert "keeping the daemon for the other runs it serves: enrich" in text
    assert (
        "taken off the queue by the dagster dev of another tgmed-orchestrator launch"
        in (submitted["outputs"]["enrich"])
    )


def test_the_runs_show_on_the_jobs_page_in_the_jobs_list_and_overview(submitted, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    webserver = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            *("-w", str(ORCHESTRATOR / "deploy" / "workspace.local.yaml")),
            *("-h", "127.0.0.1", "-p", str(port)),
        ],
        env=submitted["env"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "webserver.log").open("w"),
        start_new_session=True,
    )
    pipeline = submitted["records"]["telegram_pipeline"].dagster_run.run_id
    try:
        # the job's page (SingleJobQuery: the job's runs within its code location)
        assert check_ui(url, "telegram_pipeline", wait_seconds=600, location="tgmed") == 0
        dagster = DagsterClient(url)
        assert pipeline in [r["runId"] for r in dagster.job_runs("telegram_pipeline", "tgmed")]
        # the Jobs list and the job's header (LatestRunTagQuery: by name and repository tag)
        latest = dagster.query(
            """query($job: String!, $repo: String!) {
              pipelineRunsOrError(filter: {pipelineName: $job,
                tags: [{key: ".dagster/repository", value: $repo}]}, limit: 1) {
                ... on Runs { results { runId status } } } }""",
            {"job": "telegram_pipeline", "repo": REPOSITORY},
        )["pipelineRunsOrError"]["results"]
        assert latest == [{"runId": pipeline, "status": "SUCCESS"}]
        # Overview's timeline groups runs by their code location (RunTimelineFragment)
        timeline = dagster.query(
            """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) {
                ... on Runs { results { pipelineName
                  repositoryOrigin { repositoryName repositoryLocationName } } } } }""",
            {"ids": [r.dagster_run.run_id for r in submitted["records"].values()]},
        )["runsOrError"]["results"]
        assert {r["pipelineName"] for r in timeline} == {"telegram_pipeline", "enrich", "cleanup"}
        for run in timeline:
            assert run["repositoryOrigin"] == {
                "repositoryName": "__repository__",
                "repositoryLocationName": "tgmed",
            }
    finally:
        os.killpg(webserver.pid, signal.SIGTERM)
        webserver.wait()
        while True:  # its code server too
            try:
                os.killpg(webserver.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)


def test_no_dagster_process_outlives_the_commands(submitted):
    """The code server, the daemon and the run workers the first command started are
    gone once the commands have ended (their process groups are empty)."""
    home = str(submitted["home"])
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if f"DAGSTER_HOME={home}\0".encode() in environ:
            left.append((proc / "cmdline").read_bytes().replace(b"\0", b" ")[:200])
    assert not left, left


def test_a_step_line_shows_counts_not_times_or_timestamps():
    from tgmed_orchestrator.run_report import counts_line

    line = counts_line(
        {
            "rows_loaded": 1200,
            "seconds": 3.5,
            "lake_listed_at_ns": 1_795_837_741_874_104_419,
            "counts": {"test_pass": 164},
            "ok": True,
        }
    )
    assert line == "rows_loaded 1,200, test_pass 164"


def test_a_launch_beside_make_serve_submits_to_its_ui(tmp_path):
    """With `make serve`'s `dagster dev` serving the instance (its address in the UI file
    serve.sh writes), a launch starts nothing of its own: its run goes to that UI and
    that daemon takes it off the queue."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ORCHESTRATOR / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAKE_DIR": str(tmp_path / "lake")}
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            *("dev", "-w", str(ORCHESTRATOR / "deploy" / "workspace.local.yaml")),
            *("-h", "127.0.0.1", "-p", str(port)),
        ],
        env=env,
        stdout=(tmp_path / "serve.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (home / UI_FILE).write_text(json.dumps({"url": url}))
    try:
        with instance_of(home) as instance:
            while not live_daemon(instance, home):  # its daemon's first heartbeat
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
        launch = Launch("cleanup", env, tmp_path)
        assert launch.finish() == 0, launch.text()
        text = launch.text()
        assert "taken off the queue by a running Dagster daemon" in text, text
        assert f"in the UI: {url}/runs/{launch.run_id}" in text
        assert not (home / STATE_FILE).exists()  # it started no dagster dev of its own
        assert not list((home / "tgmed-logs").glob("launch-*.log"))
    finally:
        stop_group(serve.pid, 30, leader=serve)
