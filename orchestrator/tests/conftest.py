"""Fixtures of the orchestrator's tests: a local HTTP server that records alerts, a
small sample lake, and the yolo environment (skipped locally, required in CI)."""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# The jobs' retry policy is read when tgmed_orchestrator.jobs is imported: tests keep
# its shape (2 retries, exponential backoff) with a short first delay.
os.environ.setdefault("TGMED_STAGE_RETRY_DELAY_SECONDS", "0.2")
os.environ.setdefault("TGMED_STAGE_RETRIES", "2")


class JsonServer:
    """A real HTTP server on 127.0.0.1: it records each POST (its path and JSON body) and
    answers with what `answer(n)` gives for the n-th one (status, body); by default 200."""

    def __init__(self, answer=lambda n: (200, b'{"ok": true}')) -> None:
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append({"path": self.path, "json": json.loads(body)})
                status, text = answer(len(outer.received))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alert_server():
    server = JsonServer()
    yield server
    server.close()


def make_sample(out: Path, posts: int = 16) -> Path:
    """The bundled sample's generator, fewer posts per channel (detection on two CPU
    cores takes about half a second per photo). Returns the exports folder."""
    import subprocess
    import sys

    tool = Path(sys.executable).parent / "tgmed-sample"
    subprocess.run(
        [str(tool), "--out", str(out), "--posts-per-channel", str(posts)],
        check=True,
        capture_output=True,
    )
    return out / "exports"


def readme_dbt_test_count() -> tuple[int, int]:
    """How many data tests and unit tests dbt runs, as README.md states it ("N data tests
    and M unit tests"; tests/warehouse checks that against a real `dbt build`)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"(\d+) data tests and (\d+) unit\s+tests", readme)
    assert stated, "README.md no longer says how many dbt tests there are"
    return int(stated[1]), int(stated[2])


STAGE_POD = Path(__file__).resolve().parents[2] / "k8s" / "base" / "stage-pod.yaml"


@pytest.fixture(autouse=True)
def stage_pod_template(monkeypatch):
    """k8s mode reads the stage pods' PodTemplate from the cluster at each launch; no
    cluster runs here, so it answers with k8s/base's file, as `kubectl apply` would have
    stored it (tests/k8s builds pods from each overlay's rendered one; make k8s-e2e
    reads the real one)."""
    import yaml

    from tgmed_orchestrator.launchers.k8s_mode import K8sStageLauncher

    template = yaml.safe_load(STAGE_POD.read_text())["template"]
    monkeypatch.setattr(K8sStageLauncher, "read_pod_template", lambda self: template)
    return template
