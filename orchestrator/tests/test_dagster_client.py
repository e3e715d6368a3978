"""DagsterClient's transport over real HTTP: what it sends again and what it never does.
A webserver whose storage restarts answers 5xx for a while: a read is asked again; a
launch is not (it may have happened), so a run is never launched twice. The client
against a real Dagster webserver: test_pipeline_local and test_submit."""

from __future__ import annotations

import json
import time

import pytest

from tgmed_orchestrator.dagster_client import DagsterApiError, DagsterClient, wait_until

from .conftest import JsonServer


def answers_503_then(failures: int, data: dict):
    """A GraphQL endpoint that answers its first `failures` requests with 503, then `data`."""
    answer = json.dumps({"data": data}).encode()
    return JsonServer(lambda n: (503, b"storage restarting") if n <= failures else (200, answer))


@pytest.fixture
def answers(request):
    served = answers_503_then(*request.param)
    yield served
    served.close()


RUN = {"runOrError": {"__typename": "Run", "runId": "r1", "status": "SUCCESS"}}


@pytest.mark.parametrize("answers", [(2, RUN)], indirect=True)
def test_a_read_is_asked_again_while_the_webserver_answers_5xx(answers, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _: None)
    run = DagsterClient(answers.url).run("r1")
    assert (run.run_id, run.status) == ("r1", "SUCCESS")
    assert len(answers.received) == 3
    assert answers.received[0]["json"]["variables"] == {"runId": "r1"}


LAUNCHED = {"launchPipelineExecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r9"}}}


@pytest.mark.parametrize("answers", [(1, LAUNCHED)], indirect=True)
def test_a_launch_is_never_sent_twice(answers, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _: None)
    client = DagsterClient(answers.url)
    client.location = "tgmed"
    with pytest.raises(DagsterApiError, match="HTTP 503"):
        client.launch("telegram_pipeline")
    assert len(answers.received) == 1
    assert "mutation" in answers.received[0]["json"]["query"]


@pytest.mark.parametrize("answers", [(0, LAUNCHED)], indirect=True)
def test_a_launch_through_dagster_graphqls_client(answers):
    client = DagsterClient(answers.url)
    client.location = "tgmed"
    assert client.launch("telegram_pipeline", {"ops": {}}, tags={"who": "test"}) == "r9"
    [sent] = answers.received
    params = sent["json"]["variables"]["executionParams"]
    assert params["selector"]["repositoryLocationName"] == "tgmed"
    assert params["selector"]["pipelineName"] == "telegram_pipeline"
    assert {"key": "who", "value": "test"} in params["executionMetadata"]["tags"]


def test_nobody_listening_is_an_error_naming_the_url():
    client = DagsterClient("http://127.0.0.1:9", patience=0)
    with pytest.raises(DagsterApiError, match=r"127\.0\.0\.1:9"):
        client.query("{ version }")


def test_wait_until_returns_the_first_true_value_or_says_what_it_waited_for():
    values = iter([None, [], ["run"]])
    assert wait_until(lambda: next(values), 5, "runs", poll=0) == ["run"]
    state = {"status": "STARTED"}
    with pytest.raises(TimeoutError, match="run r1 still STARTED after 0 s"):
        wait_until(lambda: None, 0, lambda: f"run r1 still {state['status']}", poll=0)
