"""A failing stage fails its step with the stage's own error text in the event log,
is retried or not by the policy (ops.py), and the failure sensor posts an alert to a
real local HTTP server, without secrets."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

from tgmed_orchestrator.alerts import Alerter, redact_secrets
from tgmed_orchestrator.jobs import STAGE_RETRY_POLICY, load_lake, scrape_and_load
from tgmed_orchestrator.launchers import LocalStageLauncher
from tgmed_orchestrator.sensors import run_failure_alert_sensor

from .conftest import make_sample


def step_events(result, step: str, kind: DagsterEventType) -> list:
    return [e for e in result.all_events if e.step_key == step and e.event_type == kind]


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


def test_bad_credentials_fail_the_scrape_once_and_alert(
    tmp_path, monkeypatch, instance, alert_server
):
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("TELEGRAM_API_HASH", "0123456789abcdef-hash")
    monkeypatch.setenv("TELEGRAM_SESSION", "not-a-session-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://tgmed:db-password-secret@127.0.0.1:9/none")
    result = scrape_and_load.execute_in_process(
        run_config={
            "ops": {"plan_scrape_op": {"config": {"source": "telegram", "channels": ["CheMed123"]}}}
        },
        resources={"launcher": LocalStageLauncher(), "alerter": Alerter()},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    step = "scrape_op[chemed123]"
    failures = step_events(result, step, DagsterEventType.STEP_FAILURE)
    assert len(failures) == 1
    message = failures[0].event_specific_data.error.message
    # the stage's own words (the session checked before anything dials), exit code 2
    assert "tgmed-scraper scrape --channel CheMed123 exited with 2" in message
    assert "configuration error (not retried)" in message
    assert "TELEGRAM_SESSION is not a Telethon session string" in message
    # a configuration error is not retried: one attempt
    assert step_events(result, step, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert step_events(result, "load_messages_op", DagsterEventType.STEP_START) == []

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


def test_a_quarantined_file_fails_the_load_without_retry_and_alerts(
    tmp_path, monkeypatch, instance, alert_server, fresh_database
):
    """The sample imported, one message file broken: the loader loads the rest, sets the
    bad file aside and exits 1; the step fails with the loader's reason, not retried
    (the file is gone from raw/), the run fails and the alert names the file."""
    lake = tmp_path / "lake"
    env = {"LAKE_DIR": str(lake), "DATABASE_URL": fresh_database("quarantine")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import subprocess
    import sys
    from pathlib import Path

    exports = make_sample(tmp_path / "sample", posts=6)
    scraper = Path(sys.executable).parent / "tgmed-scraper"
    subprocess.run([str(scraper), "import-export", str(exports)], check=True, capture_output=True)
    bad = sorted((lake / "raw" / "telegram_messages").rglob("*.jsonl"))[0]
    bad.write_text('{"schema_version": 1, "channel_username": "x"\n', encoding="utf-8")
    result = load_lake.execute_in_process(
        resources={"launcher": LocalStageLauncher(), "alerter": Alerter()},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failures = step_events(result, "load_messages_op", DagsterEventType.STEP_FAILURE)
    assert len(failures) == 1
    message = failures[0].event_specific_data.error.message
    assert "tgmed-loader load telegram exited with 1: partial result" in message
    assert "quarantined=1" in message
    assert bad.name in message  # the loader's own log line naming the file
    assert step_events(result, "load_messages_op", DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert not bad.exists()
    assert list((lake / "quarantine").rglob(f"{bad.name}.reason.json"))

    alert_for(instance, result, Alerter(webhook_url=f"{alert_server.url}/hook"))
    [hook] = [i["json"] for i in alert_server.received]
    assert "load_lake" in hook["title"] and "quarantined=1" in hook["text"]


def test_a_failing_stage_is_retried_with_backoff(tmp_path, monkeypatch, instance, alert_server):
    """The database is down: the loader fails as a whole (exit 1 with an error), which
    a retry may fix, so the step runs 1 + max_retries times, then fails with the
    loader's own error."""
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tgmed@/tgmed?host={tmp_path}/no-server")
    result = load_lake.execute_in_process(
        resources={"launcher": LocalStageLauncher(), "alerter": Alerter()},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    retries = step_events(result, "init_db_op", DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == STAGE_RETRY_POLICY.max_retries == 2
    starts = step_events(result, "init_db_op", DagsterEventType.STEP_START)
    restarts = step_events(result, "init_db_op", DagsterEventType.STEP_RESTARTED)
    assert len(starts) + len(restarts) == 3
    [failure] = step_events(result, "init_db_op", DagsterEventType.STEP_FAILURE)
    error = failure.event_specific_data.error
    assert error.message.strip() == "Exceeded max_retries of 2"
    message = error.cause.message  # shown under it in the event log
    assert "tgmed-loader init-db exited with 1: stage failed" in message
    assert "no-server" in message  # psycopg's own words, through the stage
    # backoff: the second wait is longer than the first
    waits = [e.event_specific_data.seconds_to_wait for e in retries]
    assert waits[1] > waits[0] > 0
    alert_for(instance, result, Alerter(webhook_url=f"{alert_server.url}/hook"))
    [hook] = [i["json"] for i in alert_server.received]
    assert "Exceeded max_retries of 2\ncaused by: " in hook["text"]
    assert "tgmed-loader init-db exited with 1: stage failed: OperationalError" in hook["text"]


def test_redaction_masks_known_secrets_and_url_passwords(monkeypatch):
    monkeypatch.setenv("API_DB_PASSWORD", "api-secret-value")
    text = redact_secrets(
        "failed: postgresql://u:pw123@host/db and api-secret-value, https://x.org/path"
    )
    assert text == "failed: postgresql://u:***@host/db and ***, https://x.org/path"


@pytest.mark.parametrize(("code", "retried"), [(137, False), (143, False), (1, True), (2, False)])
def test_a_stage_killed_from_outside_is_not_retried(code, retried):
    """docker kill (137), a stop (143) or the OOM killer: a person is alerted instead of
    the same step running into the same wall; a crash (1 without a summary) is retried."""
    from dagster import Failure, build_op_context

    from tgmed_orchestrator import stages
    from tgmed_orchestrator.launchers import StageResult
    from tgmed_orchestrator.ops import finish

    with pytest.raises(Failure) as failure:
        finish(build_op_context(), stages.transform(), StageResult(code, None, ["working"]))
    assert failure.value.allow_retries is retried
    assert ("killed from outside" in failure.value.description) is (code in {137, 143})


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
        result = load_lake.execute_in_process(
            resources={"launcher": LocalStageLauncher(), "alerter": Alerter()},
            instance=instance,
            raise_on_error=False,
        )
    finally:
        stop.set()
        killer.join()
        listener.close()
    assert killed and not result.success
    [failure] = step_events(result, "init_db_op", DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "tgmed-loader init-db exited with 137: killed from outside" in message
    assert "killed by SIGKILL" in message
    assert step_events(result, "init_db_op", DagsterEventType.STEP_UP_FOR_RETRY) == []


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
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers: init-db waits
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://tgmed:pw@127.0.0.1:{listener.getsockname()[1]}/tgmed"
    )
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "local")
    recon = ReconstructableRepository.for_module(
        "tgmed_orchestrator.definitions", "defs", working_directory=str(tmp_path)
    ).get_reconstructable_job("load_lake")
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
            stage = next(
                (p for p in psutil.Process().children(recursive=True) if "init-db" in p.cmdline()),
                None,
            )
            time.sleep(0.1)
        assert stage is not None, "the init-db stage never started"
        step = stage.parent()
        [record] = instance.get_run_records()
        instance.report_run_failed(record.dagster_run)  # the worker is gone, says the server
        _, alive = psutil.wait_procs([stage, step], timeout=60)
        for process in alive:  # the test's own cleanup
            process.kill()
        listener.close()
        run.join(timeout=120)
    assert alive == [], f"still running after their run ended: {[p.pid for p in alive]}"
