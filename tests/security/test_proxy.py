"""The front door (deploy/proxy) attacked from outside: the real entrypoint and nginx
configuration, run with Debian's nginx in front of two recording upstreams.

The entrypoint is the image's own, with only its absolute paths moved into a temporary
folder (/run/proxy, /certs, /etc/tgmed-proxy) and nginx's binary named: it hashes the
login, makes the certificate and renders the configuration exactly as in compose and on
the local cluster. nginx comes from `make proxy-setup` (Debian's `nginx` package,
unpacked under data/tools/nginx: no service is installed or started).
"""

from __future__ import annotations

import base64
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "deploy" / "proxy"
NGINX = ROOT / "data" / "tools" / "nginx" / "usr" / "sbin" / "nginx"
USER, PASSWORD = "ops", "a long ui pass phrase"
API_KEY = "tgmed_0123456789ab_not-a-real-key-but-shaped-like-one-0123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder(http.server.BaseHTTPRequestHandler):
    """An upstream that answers 200 and keeps each request's path and headers."""

    seen: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_: object) -> None:
        pass


def upstream() -> tuple[http.server.ThreadingHTTPServer, list]:
    seen: list = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[dict]:
    if not NGINX.is_file():
        pytest.fail(f"no nginx at {NGINX}: run `make proxy-setup` (make test does)")
    folder = tmp_path_factory.mktemp("proxy")
    state, certs, etc = folder / "run", folder / "certs", folder / "etc"
    for path in (state, certs, etc):
        path.mkdir()
    ui_port, api_port = free_port(), free_port()
    conf = (PROXY / "nginx.conf").read_text()
    conf = conf.replace("listen 3443 ssl", f"listen 127.0.0.1:{ui_port} ssl")
    conf = conf.replace("listen 8443 ssl", f"listen 127.0.0.1:{api_port} ssl")
    (etc / "nginx.conf").write_text(
        conf.replace("/run/proxy", str(state)).replace("/certs", str(certs))
    )
    # the image's entrypoint, its paths moved here; as root (CI), nginx's workers would
    # switch to nobody and could not read the 0600 files: they stay root here
    workers = "user root; " if os.geteuid() == 0 else ""
    script = (PROXY / "entrypoint.sh").read_text()
    script = script.replace("/run/proxy", str(state)).replace("/certs", str(certs))
    script = script.replace("/etc/tgmed-proxy", str(etc))
    exec_line = f"exec nginx -c {state}/nginx.conf -g 'daemon off;'"
    assert exec_line in script, "the entrypoint no longer ends as this test expects"
    script = script.replace(
        exec_line,
        f"exec {NGINX} -e stderr -p {folder} -c {state}/nginx.conf -g 'daemon off; {workers}'",
    )
    entry = folder / "entrypoint.sh"
    entry.write_text(script)
    ui, ui_seen = upstream()
    api, api_seen = upstream()
    log = folder / "proxy.log"
    env = {
        "PATH": os.environ["PATH"],
        "PROXY_USER": USER,
        "PROXY_PASSWORD": PASSWORD,
        "PROXY_UI_UPSTREAM": f"127.0.0.1:{ui.server_address[1]}",
        "PROXY_API_UPSTREAM": f"127.0.0.1:{api.server_address[1]}",
    }
    with log.open("w") as out:
        process = subprocess.Popen(["sh", str(entry)], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while not (state / "nginx.pid").is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the proxy did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    # the certificate the entrypoint made, pinned (the only one trusted); it names
    # 127.0.0.1 too, so the host name is checked as well
    tls = ssl.create_default_context(cafile=str(certs / "tls.crt"))
    try:
        yield {
            "ui": f"https://127.0.0.1:{ui_port}",
            "api": f"https://127.0.0.1:{api_port}",
            "tls": tls,
            "ui_seen": ui_seen,
            "api_seen": api_seen,
            "log": log,
            "state": state,
            "certs": certs,
        }
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        ui.shutdown()
        api.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def fetch(proxy: dict, url: str, headers: dict | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, body, headers or {})  # noqa: S310 (our proxy)
    try:
        with urllib.request.urlopen(request, timeout=10, context=proxy["tls"]) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def logged(path: Path, *patterns: str) -> str:
    """The proxy's log once every pattern is in it (it is written after each answer)."""
    deadline = time.monotonic() + 60  # only a guard against a line that never comes
    while not all(re.search(p, text := path.read_text()) for p in patterns):
        assert time.monotonic() < deadline, f"not logged: {patterns}\n{text[-2000:]}"
        time.sleep(0.05)
    return text


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_ui_needs_the_login_and_never_sees_it(proxy):
    before = len(proxy["ui_seen"])
    status, headers, _ = fetch(proxy, proxy["ui"] + "/graphql")
    assert status == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic")
    assert fetch(proxy, proxy["ui"] + "/graphql", basic(USER, "wrong"))[0] == 401
    assert fetch(proxy, proxy["ui"] + "/graphql", basic("someone", PASSWORD))[0] == 401
    assert len(proxy["ui_seen"]) == before  # nothing refused reached the UI
    status, _, body = fetch(proxy, proxy["ui"] + "/runs", basic(USER, PASSWORD))
    assert (status, body) == (200, b'{"ok": true}')
    path, seen = proxy["ui_seen"][-1]
    assert path == "/runs"
    assert "authorization" not in seen  # the login stops at the proxy
    assert seen["x-forwarded-proto"] == "https"


def test_plain_http_is_refused_on_both_ports(proxy):
    for url in (proxy["ui"], proxy["api"]):
        plain = url.replace("https://", "http://") + "/health"
        try:
            with urllib.request.urlopen(plain, timeout=10) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 400  # nginx: "The plain HTTP request was sent to HTTPS port"


def test_the_api_gets_the_key_the_client_sent_and_bounded_bodies(proxy):
    status, _, _ = fetch(
        proxy, proxy["api"] + "/api/channels", {"Authorization": f"Bearer {API_KEY}"}
    )
    assert status == 200
    path, seen = proxy["api_seen"][-1]
    assert (path, seen["authorization"]) == ("/api/channels", f"Bearer {API_KEY}")
    assert seen["x-forwarded-proto"] == "https"
    # the API takes no large bodies; the proxy refuses them before they reach it
    before = len(proxy["api_seen"])
    status, _, _ = fetch(proxy, proxy["api"] + "/api/x", body=b"x" * 70_000)
    assert status == 413
    assert len(proxy["api_seen"]) == before


def test_the_login_is_stored_hashed_and_no_secret_reaches_the_log(proxy):
    htpasswd = (proxy["state"] / "htpasswd").read_text()
    user, _, digest = htpasswd.strip().partition(":")
    assert user == USER and digest.startswith("$6$") and PASSWORD not in htpasswd
    assert oct((proxy["state"] / "htpasswd").stat().st_mode & 0o777) == "0o600"
    assert oct((proxy["certs"] / "tls.key").stat().st_mode & 0o777) == "0o600"
    fetch(
        proxy, proxy["api"] + "/api/channels?key=" + API_KEY, {"Authorization": f"Bearer {API_KEY}"}
    )
    fetch(proxy, proxy["ui"] + "/", basic(USER, PASSWORD))
    # nginx writes a request's log line once it has answered: wait for both lines
    log = logged(proxy["log"], r'"GET /api/channels" 200', rf'127\.0\.0\.1 {USER} "GET /" 200')
    assert PASSWORD not in log and API_KEY not in log
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in log
