"""kill -9 of the loader (and its worker processes) at random points of a large load,
then a re-run: exactly the expected rows, none missing, none duplicated."""

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import psycopg

FILES, ROWS = 48, 2500


def test_kill_minus_nine_at_ten_random_points_then_rerun_loads_exactly(
    db_url, lake, helpers, tmp_path
):
    for index in range(FILES):
        channel = ("chemed123", "tikvahpharma", "lobelia4cosmetics")[index % 3]
        records = [helpers.message(channel, index * ROWS + i) for i in range(1, ROWS + 1)]
        helpers.write_file(
            lake, f"run-{index:04d}", records, day=date(2026, 10, 1) + timedelta(days=index % 20)
        )
    env = {**os.environ, "DATABASE_URL": db_url, "LAKE_DIR": str(lake.root), "LOADER_WORKERS": "2"}
    command = [sys.executable, "-m", "tgmed_loader.cli", "load", "messages"]
    rng = random.Random(20261122)
    progress = []
    for _ in range(10):
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.4, 2.5))
        os.killpg(process.pid, signal.SIGKILL)  # the loader and its worker processes
        process.wait()
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("select count(*) from raw.telegram_messages").fetchone()[0]
            audited = (
                conn.execute("select coalesce(sum(row_count), 0) from raw.load_audit").fetchone()[0]
                if rows
                else 0
            )
        assert rows == audited  # a file's rows and its audit row commit together
        progress.append(rows)
    assert progress[-1] < FILES * ROWS or progress.count(FILES * ROWS) < 10
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
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
    assert any(0 < p < FILES * ROWS for p in progress), progress  # kills landed mid-load
