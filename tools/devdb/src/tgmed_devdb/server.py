"""Start, stop and address the embedded PostgreSQL server.

pgserver listens on a unix socket only (no TCP port to collide with), in the data
folder when its path is short enough. As root it runs the server as a `pgserver` user.
The server outlives the process that started it; `stop()` ends it.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


def start(pgdata: Path) -> str:
    """Start (or find running) the server for `pgdata`; returns the URL of its
    `postgres` database."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata.resolve(), cleanup_mode=None)
    return server.get_uri()


def running(pgdata: Path) -> bool:
    """Whether a server runs for `pgdata` (its postmaster.pid names a live process)."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    return info is not None and info.is_running()


def stop(pgdata: Path) -> bool:
    """Stop the server for `pgdata`; False when none was running."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
        warnings.simplefilter("ignore")
        import pgserver

    if not running(pgdata):
        return False
    owner = pgdata.resolve().owner()
    pgserver.pg_ctl(
        ["-w", "-m", "fast", "stop"],
        pgdata=pgdata.resolve(),
        user=owner if owner != "root" else None,
    )
    return True


def database_url(server_url: str, database: str) -> str:
    """The same server, another database."""
    return re.sub(r"/[^/?]*(\?|$)", rf"/{database}\1", server_url, count=1)


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server and database, as another role (the embedded server trusts its
    unix socket, so a role needs no password there)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def create_database(server_url: str, database: str, *, replace: bool = False) -> str:
    """Create `database` if missing (or drop and recreate it); returns its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [database]).fetchone()
        if exists and replace:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
            log.info("created database %s", database)
    return database_url(server_url, database)
