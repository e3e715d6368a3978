"""`tgmed-api serve` as the process a deployment runs: configured by API_DATABASE_URL,
API_HOST and API_PORT only; /health answers even when the database does not, /ready
says so; a changed build reaches the answers; the password never reaches the log."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import httpx
import psycopg

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app


def serve(database_url: str, **extra_env: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("API_")},
        "API_DATABASE_URL": database_url,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        **extra_env,
    }
    process = subprocess.Popen(
        [shutil.which("tgmed-api"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    # no deadline of our own: it answers, or it exits (pytest-timeout bounds the test)
    while True:
        try:
            httpx.get(f"{base}/health", timeout=5)
            return process, base
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(f"tgmed-api did not start: {process.communicate()}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    _, err = process.communicate()
    return err


def test_served_process_answers_over_http(api_database_url, api_warehouse, api_key):
    process, base = serve(api_database_url)
    key = {"Authorization": f"Bearer {api_key}"}
    try:
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        assert httpx.get(f"{base}/ready").json() == {"status": "ready"}
        assert "swagger" in httpx.get(f"{base}/docs", headers=key).text.lower()
        assert httpx.get(f"{base}/api/channels").status_code == 401
        channels = httpx.get(f"{base}/api/channels", headers=key).json()
        assert channels["count"] == len(api_warehouse["truth"]["channels"])
    finally:
        stop(process)


def test_unreachable_database_health_ok_ready_503(tmp_path):
    secret = "hunter2-secret"
    url = f"postgresql://tgmed_api:{secret}@/tgmed?host={tmp_path}&connect_timeout=1"
    process, base = serve(url, API_POOL_TIMEOUT_SECONDS="2")
    try:
        assert httpx.get(f"{base}/health").status_code == 200
        ready = httpx.get(f"{base}/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["detail"].startswith("the database is unavailable")
        report = httpx.get(
            f"{base}/api/reports/top-products",
            timeout=30,
            headers={"X-API-Key": "tgmed_0123456789ab_" + "k" * 43},
        )
        assert report.status_code == 503 and "Traceback" not in report.text
    finally:
        err = stop(process)
    assert secret not in err


def _swap_dim_channels(owner_url: str, title: str) -> None:
    """What a dbt build does to a table model (a new table under the same name), and
    the record its on-run-end hook writes (what the cache is keyed on)."""
    with psycopg.connect(owner_url) as conn:
        conn.execute("alter table marts.dim_channels rename to dim_channels_before")
        conn.execute("create table marts.dim_channels as select * from marts.dim_channels_before")
        conn.execute("update marts.dim_channels set channel_title = %s", [title])
        conn.execute(
            "insert into marts.dbt_builds (invocation_id, command, nodes_written, nodes)"
            " values (gen_random_uuid()::text, 'build', 1, array['dim_channels'])"
        )


def _restore_dim_channels(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        conn.execute("drop table marts.dim_channels")
        conn.execute("alter table marts.dim_channels_before rename to dim_channels")


def test_a_new_build_reaches_cached_answers(
    api_database_url, api_warehouse, thread_server, api_key
):
    settings = ApiSettings(
        database_url=api_database_url, cache_check_seconds=0, statement_timeout_ms=300_000
    )
    with (
        thread_server(create_app(settings)) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": api_key}) as http,
    ):
        before = http.get("/api/channels").json()
        assert http.get("/api/channels").json() == before  # cached
        _swap_dim_channels(api_warehouse["url"], "Rebuilt")
        try:
            after = http.get("/api/channels").json()
        finally:
            _restore_dim_channels(api_warehouse["url"])
        assert {c["channel_title"] for c in after["data"]} == {"Rebuilt"}
        assert {c["channel_title"] for c in before["data"]} != {"Rebuilt"}
