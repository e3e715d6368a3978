"""Every way a scrape can end leaves no temporary file in the lake: success, an
exception, SIGTERM (a clean stop), and SIGKILL (which nothing can catch: the next start
sweeps what it left). Each kill happens at a point defined by progress: the fake server
writes half a photo, marks that it did, and stops answering."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tgmed_common.lake import MESSAGES, Lake, read_messages
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.scrape import ScrapeOptions, scrape_channels

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tgmed_sample.fake_telegram import FakeTelegramClient
    from tgmed_scraper import cli

    fake = FakeTelegramClient(stall_in_download={9}, stall_marker=Path(sys.argv[1]))
    fake.add_channel("chemed123", count=30)
    cli.create_client = lambda settings, **_: fake
    sys.exit(cli.main(["scrape", "--channel", "chemed123", "--since", "2026-09-01"]))
    """
)
EVERY_POST = [i for i in range(1, 31) if i % 10]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


def lake_ids(lake: Lake) -> list[int]:
    return sorted(r.message_id for p in lake.message_files() for r in read_messages(p))


def session_string() -> str:
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    return session.save()


def start_scrape(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The scraper CLI in its own process, stopped inside photo 9's download."""
    marker = tmp_path / "downloading"
    env = {
        **os.environ,
        "LAKE_DIR": str(tmp_path / "lake"),
        "TELEGRAM_API_ID": "123456",
        "TELEGRAM_API_HASH": "0123456789abcdef0123456789abcdef",
        "TELEGRAM_SESSION": session_string(),
        "SCRAPER_BATCH_SIZE": "4",
        "SCRAPER_REFRESH_DAYS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a bound for a broken test, not a speed assumption
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out, err = process.communicate(timeout=30)
            pytest.fail(f"the scrape never reached photo 9:\n{out}\n{err}")
        time.sleep(0.05)
    return process, marker


def finish_with_a_new_run(client, lake: Lake) -> dict:
    summary = asyncio.run(scrape_channels(client, lake, ["chemed123"], ScrapeOptions()))
    return summary.as_dict()


def test_a_successful_scrape_leaves_no_temporary_file(client, tmp_path):
    lake = Lake(tmp_path)
    assert finish_with_a_new_run(client, lake)["outcome"] == "ok"
    assert temp_files(tmp_path) == [] and lake_ids(lake) == EVERY_POST


def test_a_scrape_ending_in_an_exception_leaves_no_temporary_file(client, tg, tmp_path):
    lake = Lake(tmp_path)
    client.partial_then_flood = {3}  # half a photo written, then a FloodWait too long
    client.fail_after = 20
    options = ScrapeOptions(since=tg.START - timedelta(days=1), flood_wait_max_seconds=0)
    summary = asyncio.run(scrape_channels(client, lake, ["chemed123"], options))
    assert summary.channels[0].failure == "rate_limited"
    assert temp_files(tmp_path) == []


def test_sigterm_stops_cleanly_with_the_summary_and_no_temporary_file(client, tmp_path):
    process, _ = start_scrape(tmp_path)
    lake = Lake(tmp_path / "lake")
    assert [p.name.split(".tmp-")[0] for p in temp_files(lake.root)] == [".9.jpg"]  # half
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["outcome"] == "interrupted" and "stopped by SIGTERM" in summary["error"]
    # what was committed before the stop, under the run id its files carry (issue 24)
    assert summary["channels"] == 1 and summary["messages"] == 8 and summary["read"] >= 8
    assert summary["high_water_marks"] == {"chemed123": 8}
    assert summary["run_id"] and summary["by_channel"]["chemed123"]["messages"] == 8
    assert "Traceback" not in err
    assert temp_files(tmp_path) == []
    assert lake_ids(lake) == list(range(1, 9))  # every completely fetched message kept
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") == 8
    # the next run resumes with no gap and no duplicate
    assert finish_with_a_new_run(client, lake)["temp_files_swept"] == 0
    assert lake_ids(lake) == EVERY_POST and temp_files(tmp_path) == []


def test_after_sigkill_the_next_start_sweeps_what_was_left(client, tmp_path):
    process, _ = start_scrape(tmp_path)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    lake = Lake(tmp_path / "lake")
    left = temp_files(lake.root)
    assert left  # what a kill -9 leaves: the photo half-downloaded
    summary = finish_with_a_new_run(client, lake)
    assert summary["temp_files_swept"] == len(left)
    assert temp_files(tmp_path) == []
    assert lake_ids(lake) == EVERY_POST  # no gap, no duplicate
    assert lake.media_file("chemed123", 9, "jpg").exists()
