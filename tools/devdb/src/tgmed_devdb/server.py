"""Start, stop and address the embedded PostgreSQL server.

pgserver listens on a unix socket only (no TCP port to collide with), in the data
folder when its path is short enough. As root it runs the server as a `pgserver` user.
The server outlives the process that started it; `stop()` ends it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


READY_TIMEOUT_SECONDS = 120  # crash recovery of a killed server replays its WAL first


def start(pgdata: Path) -> str:
    """Start (or find running) the server for `pgdata`; returns the URL of its
    `postgres` database once it accepts connections (after a crash it first recovers)."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_lock(pgdata.resolve())
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata.resolve(), cleanup_mode=None)
        # pgserver keeps one handle per folder and process: a handle made before the
        # server was killed names a server that is gone (it starts one only when new)
        server.ensure_postgres_running()
    url = server.get_uri()
    _wait_accepting(url, pgdata)
    return url


def _remove_stale_lock(pgdata: Path) -> None:
    """A server killed with -9 leaves postmaster.pid and its socket's lock file behind.
    pgserver takes any live pid in them for a running server, and PostgreSQL refuses to
    start while that pid exists: a killed postmaster not yet reaped (a zombie: seen here,
    where the sandbox's pid 1 reaps late) or its pid taken by another program would keep
    the server down, and `start` would hand out the URL of nothing."""
    lock = pgdata / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return  # no such process: pgserver and PostgreSQL handle that themselves
    command = state[state.index("(") + 1 : state.rindex(")")]
    zombie = state[state.rindex(")") + 2] in "ZX"
    if not zombie and command.startswith("postgres"):
        return
    what = "a zombie" if zombie else command
    log.warning("removing the stale %s (pid %d is %s)", lock, pid, what)
    if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
        socket_lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(socket_lock.read_text().split()[0]) == pid:
                socket_lock.unlink()
    lock.unlink(missing_ok=True)


def _wait_accepting(url: str, pgdata: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the embedded PostgreSQL of {pgdata} does not accept connections after "
                    f"{READY_TIMEOUT_SECONDS} s ({error}); see its log {pgdata / 'log'}"
                ) from error
            time.sleep(0.2)


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
