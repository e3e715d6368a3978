"""How a stage's outcome becomes Dagster's, local mode, real stages: a configuration
error is not retried, a transient failure is retried with backoff, input set aside lets
the rest through and fails the run without retry (failed checks naming the file and
line) with one alert, a dbt test failure
names the failing test (and fails its check), a stage past its timeout is stopped and
fails. The failure sensor posts its alert to a real local HTTP server, without secrets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

from tgmed_orchestrator.alerts import Alerter, redact_secrets
from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.jobs import STAGE_RETRY_POLICY
from tgmed_orchestrator.launchers import LocalStageLauncher
from tgmed_orchestrator.sensors import run_failure_alert_sensor

from .conftest import make_sample


def step_events(result, step: str, kind: DagsterEventType) -> list:
    return [e for e in result.all_events if e.step_key == step and e.event_type == kind]


def check_evaluations(result) -> dict[tuple[str, str], object]:
    return {
        (e.asset_check_key.asset_key.to_user_string(), e.asset_check_key.name): e
        for e in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }


def run_job(name: str, instance, launcher=None, **kwargs):
    return defs.resolve_job_def(name).execute_in_process(
        resources={"launcher": launcher or LocalStageLauncher(), "alerter": Alerter()},
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


def alert_for(instance, result, alerter: Alerter) -> None:
    """Evaluate the failure sensor on the run's failure event, as the daemon would."""
    run = instance.get_run_by_id(result.run_id)
    failure = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.RUN_FAILURE
    ).records[0]
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerter": alerter},
    ).for_run_failure()
    run_failure_alert_sensor(context)


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        yield instance


def import_sample(tmp_path: Path, lake: Path, posts: int = 6) -> None:
    exports = make_sample(tmp_path / "sample", posts=posts)
    scraper = Path(sys.executable).parent / "tgmed-scraper"
    subprocess.run(
        [str(scraper), "import-export", str(exports)],
        check=True,
        capture_output=True,
        env={"LAKE_DIR": str(lake), "PATH": "/usr/bin:/bin"},
    )


def test_a_configuration_error_is_not_retried_and_alerts(
    tmp_path, monkeypatch, instance, alert_server
):
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("TELEGRAM_API_HASH", "0123456789abcdef-hash")
    monkeypatch.setenv("TELEGRAM_SESSION", "not-a-session-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://tgmed:db-password-secret@127.0.0.1:9/none")
    result = run_job(
        "scrape_and_load",
        instance,
        run_config={
            "ops": {"telegram_lake": {"config": {"source": "telegram", "channels": ["CheMed123"]}}}
        },
    )
    assert not result.success
    step = "telegram_lake"
    failures = step_events(result, step, DagsterEventType.STEP_FAILURE)
    assert len(failures) == 1
    message = failures[0].event_specific_data.error.message
    # the stage's own words (the session checked before anything dials), exit code 2
    assert "tgmed-scraper scrape --channel chemed123 exited with 2" in message
    assert "configuration error (not retried)" in message
    assert "TELEGRAM_SESSION is not a Telethon session string" in message
    # a configuration error is not retried: one attempt
    assert step_events(result, step, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert step_events(result, "raw_telegram", DagsterEventType.STEP_START) == []

    alert_for(
        instance,
        result,
        Alerter(
            webhook_url=f"{alert_server.url}/hook",
            telegram_bot_token="123:bot-token-secret",
            telegram_chat_id="-100",
            telegram_api_url=alert_server.url,
        ),
    )
    paths = sorted(item["path"] for item in alert_server.received)
    assert paths == ["/bot123:bot-token-secret/sendMessage", "/hook"]
    hook = next(i["json"] for i in alert_server.received if i["path"] == "/hook")
    assert hook["job"] == "scrape_and_load" and hook["run_id"] == result.run_id
    assert "TELEGRAM_SESSION is not a Telethon session string" in hook["text"]
    assert step in hook["text"]
    telegram = next(i["json"] for i in alert_server.received if i["path"] != "/hook")
    assert telegram["chat_id"] == "-100" and "scrape_and_load" in telegram["text"]
    sent = json.dumps(alert_server.received)
    for secret in ["0123456789abcdef-hash", "not-a-session-secret", "db-password-secret"]:
        assert secret not in sent


def test_a_quarantined_file_is_set_aside_the_rest_goes_on_and_the_run_fails_once(
    tmp_path, monkeypatch, instance, alert_server, fresh_database
):
    """One message file broken: the loader loads the rest, sets the bad file aside and
    says so; the load step succeeds (the rest goes on downstream), the check
    `no_quarantined_files` on the raw table fails naming the file and the line, the check
    `nothing_set_aside` fails the run without retry, and the one alert names the file."""
    lake = tmp_path / "lake"
    monkeypatch.setenv("LAKE_DIR", str(lake))
    monkeypatch.setenv("DATABASE_URL", fresh_database("quarantine"))
    import_sample(tmp_path, lake)
    bad = sorted((lake / "raw" / "telegram_messages").rglob("*.jsonl"))[0]
    good = bad.read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(good + '\n{"schema_version": 1, "channel_username": "x"\n', encoding="utf-8")
    # the import runs again in the job and finds every message in the lake already
    monkeypatch.setenv("TGMED_SCRAPE_SOURCE", "export")
    monkeypatch.setenv("TGMED_EXPORT_ROOT", str(tmp_path / "sample" / "exports"))
    result = run_job("scrape_and_load", instance)
    assert not result.success
    assert step_events(result, "raw_telegram", DagsterEventType.STEP_SUCCESS)
    gate = "raw__telegram_messages_nothing_set_aside"
    [failure] = step_events(result, gate, DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "input set aside: 1 by the load of the Telegram streams" in message
    assert bad.name in message and "line 2" in message
    assert step_events(result, gate, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert not bad.exists()
    assert list((lake / "quarantine").rglob(f"{bad.name}.reason.json"))
    # the rest was loaded: the raw table's materialization, and its checks failed
    [materialization] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key.to_user_string() == "raw/telegram_messages"
    ]
    assert materialization.metadata["files_quarantined"].value == 1
    assert materialization.metadata["set_aside"].value == 1
    assert materialization.metadata["rows_loaded"].value > 0
    checks = check_evaluations(result)
    check = checks[("raw/telegram_messages", "no_quarantined_files")]
    assert not check.passed
    files = check.metadata["files"].value
    assert bad.name in files and "line 2" in files
    assert not checks[("raw/telegram_messages", "nothing_set_aside")].passed

    alert_for(instance, result, Alerter(webhook_url=f"{alert_server.url}/hook"))
    [hook] = [i["json"] for i in alert_server.received]
    assert "scrape_and_load" in hook["title"] and bad.name in hook["text"]
    assert "input set aside" in hook["text"]


def test_a_broken_export_is_set_aside_and_the_good_channels_reach_the_raw_tables(
    tmp_path, monkeypatch, instance, alert_server, fresh_database
):
    """Three exports, one of them broken: the import step sets it aside and succeeds, the
    good channels are loaded in the same run, the lake's `nothing_set_aside` check fails
    the run (not retried) and the one alert names the broken export."""
    lake = tmp_path / "lake"
    exports = make_sample(tmp_path / "sample", posts=6)
    folders = sorted(p for p in exports.iterdir() if (p / "result.json").is_file())
    broken = folders[0] / "result.json"
    broken.write_text('{"name": "broken", "messages": [', encoding="utf-8")
    url = fresh_database("broken_export")
    monkeypatch.setenv("LAKE_DIR", str(lake))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TGMED_SCRAPE_SOURCE", "export")
    monkeypatch.setenv("TGMED_EXPORT_ROOT", str(exports))
    result = run_job("scrape_and_load", instance)
    assert not result.success
    for step in ("telegram_lake", "raw_telegram"):
        assert step_events(result, step, DagsterEventType.STEP_SUCCESS), step
    gate = "lake__telegram_messages_nothing_set_aside"
    [failure] = step_events(result, gate, DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "input set aside: 1 by the scrape/import step" in message
    assert str(broken) in message
    assert step_events(result, gate, DagsterEventType.STEP_UP_FOR_RETRY) == []
    with psycopg.connect(url) as conn:
        loaded = dict(
            conn.execute(
                "select channel_username, count(*) from raw.telegram_messages group by 1"
            ).fetchall()
        )
    assert sorted(loaded) == sorted(p.name.lower() for p in folders[1:])
    assert all(count > 0 for count in loaded.values())

    alert_for(instance, result, Alerter(webhook_url=f"{alert_server.url}/hook"))
    [hook] = [i["json"] for i in alert_server.received]
    text = hook["text"]
    assert f"{broken}: not valid JSON" in text and f"{broken}: {broken}" not in text
    assert "input set aside: 1" in text and "dagster._core" not in text


def test_a_transient_failure_is_retried_with_backoff(tmp_path, monkeypatch, instance):
    """The database is down: the loader says `transient` (psycopg's OperationalError),
    so the step runs 1 + max_retries times with growing waits, then fails with the
    loader's own error."""
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tgmed@/tgmed?host={tmp_path}/no-server")
    result = run_job("load_lake", instance)
    assert not result.success
    step = "raw_telegram"
    retries = step_events(result, step, DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == STAGE_RETRY_POLICY.max_retries == 2
    starts = step_events(result, step, DagsterEventType.STEP_START)
    restarts = step_events(result, step, DagsterEventType.STEP_RESTARTED)
    assert len(starts) + len(restarts) == 3
    [failure] = step_events(result, step, DagsterEventType.STEP_FAILURE)
    error = failure.event_specific_data.error
    assert error.message.strip() == "Exceeded max_retries of 2"
    message = error.cause.message
    assert "tgmed-loader init-db exited with 1: transient failure (retried with backoff)" in message
    assert "no-server" in message  # psycopg's own words, through the stage
    waits = [e.event_specific_data.seconds_to_wait for e in retries]
    assert waits[1] > waits[0] > 0


class SilentServer:
    """Accepts TCP connections and never answers: a database that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def closed_by_peer(self) -> bool:
        """Every connection was closed by the client (the stage is gone)."""
        for conn in self.connections:
            conn.settimeout(5)
            try:
                if conn.recv(65536) != b"":
                    while conn.recv(65536):
                        pass
            except OSError:
                return False
        return bool(self.connections)


def test_a_stage_past_its_timeout_is_stopped_and_fails_without_retry(
    tmp_path, monkeypatch, instance
):
    """init-db against a server that never answers hangs: after the stage's timeout it
    is stopped (its connection closes) and the step fails once, saying so."""
    server = SilentServer()
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tgmed:pw@127.0.0.1:{server.port}/tgmed")
    launcher = LocalStageLauncher(timeout_seconds=3600, stage_timeouts={"load": 4})
    result = run_job("load_lake", instance, launcher=launcher)
    assert not result.success
    step = "raw_telegram"
    [failure] = step_events(result, step, DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "tgmed-loader init-db exited with 124: timed out: stopped after 4 s" in message
    assert step_events(result, step, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert server.connections, "the stage never reached the server"
    assert server.closed_by_peer()


def test_a_dbt_test_failure_names_the_test_and_fails_its_check(
    tmp_path, monkeypatch, instance, fresh_database
):
    """A message with negative views in raw: dbt's test non_negative on the staging
    model fails; the step fails naming it (not retried), and the check of that name on
    staging/stg_telegram_messages is a failed check."""
    lake = tmp_path / "lake"
    url = fresh_database("dbtfail")
    monkeypatch.setenv("LAKE_DIR", str(lake))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt-target" / "logs"))
    import_sample(tmp_path, lake)
    loader = Path(sys.executable).parent / "tgmed-loader"
    subprocess.run([str(loader), "load", "messages"], check=True, capture_output=True)
    with psycopg.connect(url) as conn:
        conn.execute(
            "update raw.telegram_messages set record = jsonb_set(record, '{views}', '-7')"
            " where message_id = (select min(message_id) from raw.telegram_messages)"
        )
    result = run_job("transform", instance)
    assert not result.success
    [failure] = step_events(result, "dbt_models", DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "tgmed-transform build exited with 1: the stage failed (not retried)" in message
    assert "test.tgmed.non_negative_stg_telegram_messages_view_count" in message
    assert step_events(result, "dbt_models", DagsterEventType.STEP_UP_FOR_RETRY) == []
    checks = check_evaluations(result)
    failed = checks[
        ("staging/stg_telegram_messages", "non_negative_stg_telegram_messages_view_count")
    ]
    assert not failed.passed
    assert failed.metadata["dagster_dbt/failed_row_count"].value >= 1
    passed = checks[("staging/stg_telegram_messages", "unique_stg_telegram_messages_message_key")]
    assert passed.passed
    # what dbt built before the failure is recorded as materialized
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert "staging/stg_telegram_messages" in materialized


def test_redaction_masks_known_secrets_and_url_passwords(monkeypatch):
    monkeypatch.setenv("API_DB_PASSWORD", "api-secret-value")
    text = redact_secrets(
        "failed: postgresql://u:pw123@host/db and api-secret-value, https://x.org/path"
    )
    assert text == "failed: postgresql://u:***@host/db and ***, https://x.org/path"


@pytest.mark.parametrize(
    ("code", "outcome", "retried", "words"),
    [
        (137, None, False, "killed from outside"),
        (143, None, False, "killed from outside"),
        (1, None, True, "without reporting an outcome"),
        (2, None, False, "usage or configuration error"),
        (1, "transient", True, "transient"),
        (1, "set_aside", False, "input set aside"),
        (2, "config_error", False, "configuration error"),
        (1, "failed", False, "the stage failed"),
        (124, None, False, "timed out"),
    ],
)
def test_what_each_outcome_means(code, outcome, retried, words):
    from tgmed_orchestrator import stages
    from tgmed_orchestrator.launchers import StageRun
    from tgmed_orchestrator.outcomes import failure

    run = StageRun(stages.transform(), exit_code=code, outcome=outcome, timeout_seconds=60)
    made = failure(run)
    assert made.allow_retries is retried
    assert words in made.description


def test_a_local_stage_killed_by_a_signal_is_not_retried(tmp_path, monkeypatch, instance):
    """Regression (fault suite, kill -9): in local mode a stage killed by SIGKILL (the OOM
    killer, an operator) came back as exit -9, not 137, and was retried, while the same
    kill in docker mode fails the step at once. The loader hangs on a database that
    never answers; it is killed from outside."""
    import socket
    import threading
    import time

    import psutil

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers: init-db waits
    port = listener.getsockname()[1]
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tgmed:pw@127.0.0.1:{port}/tgmed")
    stop = threading.Event()
    killed: list[int] = []

    def kill_the_loader() -> None:
        while not stop.is_set():
            for child in psutil.Process().children(recursive=True):
                try:
                    if "init-db" in child.cmdline():
                        child.kill()
                        killed.append(child.pid)
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_loader, daemon=True)
    killer.start()
    try:
        result = run_job("load_lake", instance)
    finally:
        stop.set()
        killer.join()
        listener.close()
    assert killed and not result.success
    [failure] = step_events(result, "raw_telegram", DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "tgmed-loader init-db exited with 137: killed from outside" in message
    assert "killed by SIGKILL" in message
    assert step_events(result, "raw_telegram", DagsterEventType.STEP_UP_FOR_RETRY) == []


def test_a_stage_and_its_step_process_end_with_their_run(tmp_path, monkeypatch):
    """Regression (fault suite, kill -9 of the run worker): the code server (or run
    monitoring) marks a run whose worker died as failed, but the worker's step processes
    and their stages lived on, writing the lake and the warehouse beside the next run,
    and a step process that had lost its parent never exited. Here the run is marked
    failed (as the code server does) while its stage hangs on a database that never
    answers: the stage and its step process must end."""
    import socket
    import threading
    import time

    import psutil
    from dagster import build_reconstructable_job, execute_job

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers: init-db waits
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://tgmed:pw@127.0.0.1:{listener.getsockname()[1]}/tgmed"
    )
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "local")
    # the step processes rebuild the job from a module they can import (Dagster's public way)
    (tmp_path / "rebuild_job.py").write_text(
        "from tgmed_orchestrator.definitions import defs\n\n\n"
        "def job(name):\n    return defs.resolve_job_def(name)\n"
    )
    recon = build_reconstructable_job(
        "rebuild_job",
        "job",
        reconstructable_args=("load_lake",),
        reconstructor_working_directory=str(tmp_path),
    )
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        run = threading.Thread(
            target=execute_job,
            kwargs={"job": recon, "instance": instance, "raise_on_error": False},
            daemon=True,
        )
        run.start()
        deadline, stage = time.monotonic() + 300, None
        while stage is None and time.monotonic() < deadline:
            # the stage runs under coreutils `timeout`, a child of the step process
            stage = next(
                (
                    p
                    for p in psutil.Process().children(recursive=True)
                    if "init-db" in p.cmdline() and p.name() != "timeout"
                ),
                None,
            )
            time.sleep(0.1)
        assert stage is not None, "the init-db stage never started"
        under = stage.parent()  # `timeout`
        step = under.parent()
        assert step.pid in {p.pid for p in psutil.Process().children()}
        [record] = instance.get_run_records()
        instance.report_run_failed(record.dagster_run)  # the worker is gone, says the server
        _, alive = psutil.wait_procs([stage, under, step], timeout=60)
        for process in alive:  # the test's own cleanup
            process.kill()
        listener.close()
        run.join(timeout=120)
    assert alive == [], f"still running after their run ended: {[p.pid for p in alive]}"


RUN_WORKER = """
import multiprocessing, os, sys, threading

def step(ready):
    import tgmed_orchestrator.definitions  # a step process loads the code location first
    with open(ready, "w") as out:
        out.write(str(os.getpid()))
    threading.Event().wait()  # a step that never returns (or hangs at exit)

if __name__ == "__main__":
    process = multiprocessing.get_context(sys.argv[1]).Process(target=step, args=(sys.argv[2],))
    process.start()
    process.join()
"""


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_a_step_process_dies_with_its_run_worker(tmp_path, start_method):
    """Regression (fault suite, kill -9 of the run worker late in a run, local mode): the
    run was marked FAILURE, but a step process that was not launching a stage (between
    stages, in a check, blocked at exit) lived on, and on `forkserver` kept Python's
    forkserver alive with it. A run worker (a real process starting a real step process
    the way Dagster's multiprocess executor does, under both start methods) is killed
    with SIGKILL while its step waits forever: every process it started must end."""
    import os
    import signal
    import time

    import psutil

    script, ready = tmp_path / "run_worker.py", tmp_path / "step.pid"
    script.write_text(RUN_WORKER)
    worker = subprocess.Popen([sys.executable, str(script), start_method, str(ready)])
    try:
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            assert worker.poll() is None, "the run worker ended before its step started"
            time.sleep(0.1)
        assert ready.exists(), "the step process never loaded the code location"
        started = psutil.Process(worker.pid).children(recursive=True)
        assert int(ready.read_text()) in {p.pid for p in started}
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        _, alive = psutil.wait_procs(started, timeout=30)
    finally:
        worker.kill()
    leftovers = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in alive]
    for process in alive:  # the test's own cleanup
        process.kill()
    assert leftovers == [], f"alive 30 s after their run worker was killed ({start_method})"


def test_error_texts_read_a_real_step_error_chain_by_class():
    """A Failure's text without Dagster's module path, a user exception with its class,
    Dagster's wrappers (a step execution error, a retry request) left out: from the
    errors a real run records."""
    from dagster import DagsterEventType, DagsterInstance, Failure, RetryPolicy, job, op

    from tgmed_orchestrator.outcomes import error_texts

    @op(retry_policy=RetryPolicy(max_retries=1))
    def set_aside():
        raise Failure(description="input set aside: 1\nsee the file", allow_retries=True)

    @op
    def crash():
        raise ValueError("bad value")

    @job
    def both():
        set_aside()
        crash()

    with DagsterInstance.ephemeral() as instance:
        result = both.execute_in_process(raise_on_error=False, instance=instance)
    texts = {
        (event.event_type, event.step_key): error_texts(event.event_specific_data.error)
        for event in result.all_events
        if event.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY)
    }
    assert texts[(DagsterEventType.STEP_UP_FOR_RETRY, "set_aside")] == [
        "input set aside: 1\nsee the file"
    ]
    assert texts[(DagsterEventType.STEP_FAILURE, "set_aside")] == [
        "Exceeded max_retries of 1",
        "input set aside: 1\nsee the file",
    ]
    assert texts[(DagsterEventType.STEP_FAILURE, "crash")] == ["ValueError: bad value"]
    assert error_texts(None) == []
