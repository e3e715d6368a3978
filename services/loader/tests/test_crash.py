"""kill -9 of the loader (and its worker processes) at points defined by progress, then a
re-run: exactly the expected rows, none missing, none duplicated.

A kill after a random delay proves nothing on a machine fast enough to finish first, so
each kill lands where the loader says it is (tgmed_loader.faults): a worker stops itself
inside the COPY of a chosen file, or after writing a file's rows and audit row but before
the commit; the test sees that state in pg_stat_activity, then kills the whole process
group. The chosen file is a random one among the next pending files, so kills land after
different numbers of committed files; the other worker keeps loading until the kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg

from tgmed_loader.faults import PAUSE_AT, PAUSE_NOTE

FILES, ROWS, KILLS = 48, 2500, 10
# what the paused session looks like from the server, per fault point
SERVER_STATE = {
    "in-copy": ("active", "copy raw.telegram_messages %"),
    "before-commit": ("idle in transaction", "insert into raw.load_audit %"),
}


def committed(db_url: str) -> tuple[set[str], int, int]:
    """(files in the audit, rows in the table, rows the audit accounts for), read in one
    snapshot once the server has ended every other session of the database (a killed
    client's COMMIT may still be in flight until its backend exits)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        while conn.execute(
            "select count(*) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]:
            pass
        if not conn.execute("select to_regclass('raw.load_audit')").fetchone()[0]:
            return set(), 0, 0
        files, rows, audited = conn.execute(
            "select array(select file_path from raw.load_audit), "
            "(select count(*) from raw.telegram_messages), "
            "(select coalesce(sum(row_count), 0) from raw.load_audit)"
        ).fetchone()
        return set(files), rows, audited


def paused_sessions(db_url: str, point: str) -> int:
    state, query = SERVER_STATE[point]
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid() and state = %s and query ilike %s",
            [state, query],
        ).fetchone()[0]


def run_until_paused(command, env, note: Path) -> tuple[subprocess.Popen, dict]:
    """Start the loader; return once a worker has stopped at the fault point (the note
    is written just before it stops). No clock: only the loader's progress, or its end."""
    note.unlink(missing_ok=True)
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the loader and its workers: one group to kill
    )
    while not note.exists():
        try:
            process.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise AssertionError(
            f"the loader ended ({process.returncode}) without reaching the fault point "
            f"{env[PAUSE_AT]}: {stderr[-2000:]}"
        )
    return process, json.loads(note.read_text())


def test_kill_minus_nine_at_points_defined_by_progress_then_rerun_loads_exactly(
    db_url, lake, helpers, tmp_path, capsys
):
    for index in range(FILES):
        channel = ("chemed123", "tikvahpharma", "lobelia4cosmetics")[index % 3]
        records = [helpers.message(channel, index * ROWS + i) for i in range(1, ROWS + 1)]
        helpers.write_file(
            lake, f"run-{index:04d}", records, day=date(2026, 10, 1) + timedelta(days=index % 20)
        )
    order = [lake.relative(path) for path in lake.message_files()]  # the loader's order
    note = tmp_path / "paused.json"
    base_env = {**os.environ, "DATABASE_URL": db_url, "LAKE_DIR": str(lake.root)}
    base_env |= {"LOADER_WORKERS": "2", PAUSE_NOTE: str(note)}
    command = [sys.executable, "-m", "tgmed_loader.cli", "load", "messages"]
    rng = random.Random(20261122)
    kills = []
    for number in range(KILLS):
        point = ("in-copy", "before-commit")[number % 2]
        done_files, _, _ = committed(db_url)
        pending = [f for f in order if f not in done_files]
        target = pending[rng.randrange(min(len(pending), 8))]
        env = {**base_env, PAUSE_AT: f"{point}:{target}"}
        process, paused = run_until_paused(command, env, note)
        assert paused == {"pid": paused["pid"], "point": point, "file": target}
        seen_by_server = paused_sessions(db_url, point)
        os.killpg(process.pid, signal.SIGKILL)  # the loader and its worker processes
        process.wait()
        files, rows, audited = committed(db_url)
        assert rows == audited  # a file's rows and its audit row commit together
        assert target not in files  # the killed transaction left nothing behind
        kills.append((point, target, len(files), rows, seen_by_server))
    with capsys.disabled():  # shown in every run: where each kill landed
        total = f"{FILES}-file, {FILES * ROWS:,}-row load"
        print(f"\n{Path(__file__).name}: {KILLS} kills of a {total}")
        for number, (point, target, files, rows, seen) in enumerate(kills, start=1):
            where = "inside the COPY of" if point == "in-copy" else "before the commit of"
            print(
                f"  kill {number:2}: {where} {target}; {files} files ({rows:,} rows) "
                f"committed before it; server saw the paused session: {bool(seen)}"
            )
    # a kill inside a file's COPY, seen as such by the server, happens in every run
    assert any(point == "in-copy" and seen for point, *_, seen in kills), kills
    assert all(seen for *_, seen in kills), kills
    assert any(0 < files < FILES for _, _, files, _, _ in kills), kills  # kills mid-load

    done = subprocess.run(command, env=base_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(db_url) as conn:
        total, distinct = conn.execute(
            "select count(*), count(distinct (channel_username, message_id)) "
            "from raw.telegram_messages"
        ).fetchone()
        files = conn.execute("select count(*) from raw.load_audit").fetchone()[0]
    assert total == distinct == FILES * ROWS
    assert files == FILES
    assert not lake.quarantined()
