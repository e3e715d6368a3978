"""`tgmed-devdb run -- COMMAND`: the embedded PostgreSQL for as long as COMMAND runs,
stopped afterwards (Ctrl-C included) if this command started it, left running (and said
so, with how to stop it) if it was running before. Waits end on progress (a line the
command printed, a process's exit), never on a delay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tgmed_devdb.server import running, start, stop

DEVDB = str(Path(sys.executable).parent / "tgmed-devdb")
CONNECTS = (
    "import os, psycopg; psycopg.connect(os.environ['DATABASE_URL']).close(); "
    "print('connected', flush=True)"
)


@pytest.fixture
def pgdata(tmp_path):
    folder = tmp_path / "pg"
    yield folder
    stop(folder)


def env_without_database_url() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


def run_connects(pgdata: Path) -> subprocess.CompletedProcess:
    """`tgmed-devdb run` of a command that connects, with no DATABASE_URL of its own."""
    return subprocess.run(
        [DEVDB, "run", "--pgdata", str(pgdata), "--", sys.executable, "-c", CONNECTS],
        env=env_without_database_url(),
        capture_output=True,
        text=True,
    )


def test_a_server_it_started_is_stopped_when_the_command_ends(pgdata):
    done = run_connects(pgdata)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "connected"
    assert lines[-1] == f"stopped the embedded PostgreSQL ({pgdata}) this command started"
    assert not running(pgdata)


def test_a_server_running_before_keeps_running_and_the_last_line_says_so(pgdata):
    url = start(pgdata)
    done = run_connects(pgdata)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "keeps running" in last and "make db-stop" in last
    assert running(pgdata)
    psycopg.connect(url).close()


def test_ctrl_c_ends_the_command_and_stops_the_server(pgdata, tmp_path):
    """SIGINT to the process group, as a terminal's Ctrl-C: the command ends, the
    server it started is stopped, and the exit code is 0 (stopping was asked for)."""
    waits = tmp_path / "waits.py"
    waits.write_text(
        CONNECTS + "\nimport signal, sys\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\nsignal.pause()\n"
    )
    process = subprocess.Popen(
        [DEVDB, "run", "--pgdata", str(pgdata), "--", sys.executable, str(waits)],
        env=env_without_database_url(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "connected"  # the command runs
    os.killpg(process.pid, signal.SIGINT)
    rest = process.stdout.read()
    assert process.wait() == 0
    assert rest.strip().splitlines()[-1].startswith("stopped the embedded PostgreSQL")
    assert not running(pgdata)


def test_with_database_url_set_nothing_is_started(pgdata):
    done = subprocess.run(
        [DEVDB, "run", "--pgdata", str(pgdata), "--", sys.executable, "-c", "print('ran')"],
        env={**env_without_database_url(), "DATABASE_URL": "postgresql://elsewhere/db"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ran"
    assert not pgdata.exists()
