"""DagsterClient's transport over real HTTP: what it sends again and what it never does.
A webserver whose storage restarts answers 5xx for a while: a read is asked again; a
launch is not (it may have happened), so a run is never launched twice. The client
against a real Dagster webserver: test_pipeline_local and test_submit."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tgmed_orchestrator.dagster_client import DagsterApiError, DagsterClient, wait_until


class Answers:
    """A GraphQL endpoint that answers `failures` requests with 503, then `data`."""

    def __init__(self, failures: int, data: dict) -> None:
        self.failures, self.data, self.bodies = failures, data, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                failing = len(outer.bodies) <= outer.failures
                body = (
                    b"storage restarting" if failing else json.dumps({"data": outer.data}).encode()
                )
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answers(request):
    failures, data = request.param
    served = Answers(failures, data)
    yield served
    served.close()


RUN = {"runOrError": {"__typename": "Run", "runId": "r1", "status": "SUCCESS"}}


@pytest.mark.parametrize("answers", [(2, RUN)], indirect=True)
def test_a_read_is_asked_again_while_the_webserver_answers_5xx(answers, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _: None)
    run = DagsterClient(answers.url).run("r1")
    assert (run.run_id, run.status) == ("r1", "SUCCESS")
    assert len(answers.bodies) == 3
    assert answers.bodies[0]["variables"] == {"runId": "r1"}


LAUNCHED = {"launchPipelineExecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r9"}}}


@pytest.mark.parametrize("answers", [(1, LAUNCHED)], indirect=True)
def test_a_launch_is_never_sent_twice(answers, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _: None)
    client = DagsterClient(answers.url)
    client.location = "tgmed"
    with pytest.raises(DagsterApiError, match="HTTP 503"):
        client.launch("telegram_pipeline")
    assert len(answers.bodies) == 1
    assert "mutation" in answers.bodies[0]["query"]


@pytest.mark.parametrize("answers", [(0, LAUNCHED)], indirect=True)
def test_a_launch_through_dagster_graphqls_client(answers):
    client = DagsterClient(answers.url)
    client.location = "tgmed"
    assert client.launch("telegram_pipeline", {"ops": {}}, tags={"who": "test"}) == "r9"
    [sent] = answers.bodies
    params = sent["variables"]["executionParams"]
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
