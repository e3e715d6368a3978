"""A real HTTP endpoint for the platform's alert webhook (ALERT_WEBHOOK_URL): records
every payload it receives, with the time it arrived."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Alert:
    received_at: float  # epoch seconds
    path: str
    body: str

    @property
    def payload(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str:
        payload = self.payload
        return str(payload.get("text") or payload.get("body") or self.body)


class AlertReceiver:
    """Listens on `host` (127.0.0.1 for local mode; the Docker network's gateway for
    containers) and a free port; `url_path` may carry a secret, as real webhooks do."""

    def __init__(self, host: str = "127.0.0.1", url_path: str = "/alerts") -> None:
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer._lock:
                    outer.alerts.append(
                        Alert(time.time(), self.path, body.decode("utf-8", "replace"))
                    )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}{url_path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def about(self, run_id: str) -> list[Alert]:
        with self._lock:
            return [a for a in self.alerts if run_id in a.body]

    def wait_for(self, run_id: str, timeout: float) -> Alert | None:
        """The first alert naming the run, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.about(run_id)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
