"""pytest fixtures for a real PostgreSQL.

`pg_server_url`: a server for the whole test session: TEST_DATABASE_URL's server when
set (its database is never touched: tests create their own), else an embedded server
started in a temporary folder and stopped at the end. `fresh_database`: a factory for a
new, empty database on it, dropped when the test session ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tgmed_devdb.server import create_database, start, stop


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="tgmed-pg-"))
    url = start(folder / "pgdata")
    try:
        yield url
    finally:
        stop(folder / "pgdata")
        # a test session's server is throwaway: each left behind ~200 MB in /tmp
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fresh_database(pg_server_url: str) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        return create_database(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
