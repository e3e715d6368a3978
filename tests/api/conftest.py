"""The API over the sample's marts: one warehouse for the session (the API only reads
it), the app served by a real uvicorn on a free port in a thread, and an HTTP client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app
from tgmed_devdb.server import with_user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadServer:
    """uvicorn serving `app` over real HTTP from a background thread."""

    free_port = staticmethod(free_port)

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        while not self.server.started:  # it starts, or its thread ends (no deadline)
            assert self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def thread_server() -> type[ThreadServer]:
    """The class, for tests that serve an app of their own (conftest is not importable)."""
    return ThreadServer


@pytest.fixture(scope="session")
def api_warehouse(make_warehouse) -> dict:
    built = make_warehouse("api")
    assert built["summaries"]["build"]["success"], built["summaries"]["build"]["failures"]
    return built


@pytest.fixture(scope="session")
def api_database_url(api_warehouse) -> str:
    """The read-only role's URL, as `tgmed-loader init-db` created it (API_DB_USER)."""
    return with_user(api_warehouse["url"], "tgmed_api")


@pytest.fixture(scope="session")
def api_settings(api_database_url) -> ApiSettings:
    # the defaults (5 s per statement, 10 s for a connection) are for serving; a loaded
    # test machine must not turn a correct answer into a 503
    return ApiSettings(
        database_url=api_database_url, statement_timeout_ms=300_000, pool_timeout_seconds=300
    )


@pytest.fixture(scope="session")
def api_server(api_settings) -> Iterator[ThreadServer]:
    with ThreadServer(create_app(api_settings)) as server:
        yield server


@pytest.fixture(scope="session")
def client(api_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as http:
        yield http
