"""What a real MTProto server (an open-source Telegram server, issue 24) showed the
scraper getting wrong, each replayed here: with real Telethon TL objects and, where
paging or the wire matters, Telethon's own code (its `iter_messages` over getHistory
pages; its MTProto sender against a transport-level server in another process)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rsa
from telethon.crypto import AuthKey
from telethon.errors import TypeNotFoundError
from telethon.sessions import StringSession

from tgmed_common.lake import MESSAGES, Lake, read_messages, read_snapshots
from tgmed_common.state import HighWaterMarks
from tgmed_sample.fake_telegram import FakeTelegramClient, TelethonOverFake, make_messages
from tgmed_scraper.scrape import ScrapeOptions, scrape_channels

SERVER = Path(__file__).with_name("mtproto_server.py")
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def lake_ids(lake: Lake) -> list[int]:
    return sorted(r.message_id for p in lake.message_files() for r in read_messages(p))


def scrape(client, lake: Lake, **options) -> dict:
    options = {"download_photos": False, **options}
    summary = asyncio.run(scrape_channels(client, lake, ["padded"], ScrapeOptions(**options)))
    return summary.as_dict()


# --- 1. a server that pads its pages --------------------------------------------------


@pytest.mark.parametrize("pads", [False, True], ids=["telegram", "padding server"])
def test_a_first_scrape_reads_the_whole_channel_in_one_run(tmp_path, pads):
    """240 posts since 2020 through Telethon's own paging (100 a page): a server that
    fills its last page with older posts made Telethon stop at 200 (outcome ok)."""
    fake = FakeTelegramClient(pads_pages=pads)
    fake.add_channel("padded", count=240)
    lake = Lake(tmp_path)
    body = scrape(TelethonOverFake(fake), lake, since=SINCE)
    posts = [i for i in range(1, 241) if i % 10]  # every 10th is a service message
    assert body["outcome"] == "ok" and body["messages_left"] == {}
    assert lake_ids(lake) == posts
    assert body["messages"] == len(posts) and body["high_water_marks"] == {"padded": 240}
    # the padding is read and dropped, never written twice
    assert body["dropped_below_mark"] == (60 if pads else 0)
    # and the next run, with 15 new posts, reads exactly those
    fake.channels["padded"] += make_messages(fake.ids["padded"], 15, start_id=241)
    again = scrape(TelethonOverFake(fake), lake, refresh_days=0)
    assert again["outcome"] == "ok" and again["high_water_marks"] == {"padded": 255}
    assert lake_ids(lake) == [i for i in range(1, 256) if i % 10]


def test_a_server_that_stops_short_gets_the_channel_reported_incomplete(tmp_path):
    fake = FakeTelegramClient(hands_out_up_to=150)
    fake.add_channel("padded", count=240)
    lake = Lake(tmp_path)
    body = scrape(fake, lake, since=SINCE)
    assert body["outcome"] == "partial" and body["messages_left"] == {"padded": 90}
    error = body["failed_channels"]["padded"]
    assert "stopped handing out messages after id 150 though its newest is 240" in error
    assert "up to 90 messages are left" in error
    # what was read is kept, and the next run goes on from there
    assert HighWaterMarks(lake, MESSAGES).get("padded") == 150
    assert lake_ids(lake) == [i for i in range(1, 151) if i % 10]
    fake.hands_out_up_to = None
    assert scrape(fake, lake)["outcome"] == "ok"
    assert lake_ids(lake) == [i for i in range(1, 241) if i % 10]


# --- 3. an outage's message names the mark saved ------------------------------------------


@pytest.mark.parametrize("fault", ["connection lost", "server silent"])
def test_an_outage_names_the_high_water_mark_actually_saved(tmp_path, fault):
    fake = FakeTelegramClient()
    fake.add_channel("padded", count=60)
    if fault == "connection lost":
        fake.fail_after = 37
    else:
        fake.stall_after = 37
    lake = Lake(tmp_path)
    # batches of 50: nothing is flushed before the fault, all of it on the way out
    body = scrape(fake, lake, since=SINCE, batch_size=50, request_timeout=1)
    saved = HighWaterMarks(lake, MESSAGES).get("padded")
    assert saved == max(lake_ids(lake)) > 0
    error = body["failed_channels"]["padded"]
    assert re.findall(r"resumes after message (\d+)", error) == [str(saved)], error
    assert body["outcome"] == "transient" and body["high_water_marks"] == {"padded": saved}


# --- 6. the channel's info is extra data ------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [TypeNotFoundError(0x1234ABCD, b"\x00" * 8), RuntimeError("layer 158 is not supported")],
    ids=["layer mismatch", "server error"],
)
def test_a_failing_full_channel_request_still_scrapes_the_messages(tmp_path, error):
    fake = FakeTelegramClient(full_channel_error=error)
    fake.add_channel("padded", count=30)
    lake = Lake(tmp_path)
    body = scrape(fake, lake, since=SINCE)
    assert lake_ids(lake) == [i for i in range(1, 31) if i % 10]
    assert body["messages"] == 27 and body["snapshots"] == 0 and not read_snapshots_of(lake)
    assert body["outcome"] == "ok" and body["failed_channels"] == {}
    [(channel, why)] = body["snapshot_errors"].items()
    assert channel == "padded" and "could not be read" in why and "without a snapshot" in why


def read_snapshots_of(lake: Lake) -> list:
    return [s for p in lake.snapshot_files() for s in read_snapshots(p)]


# --- 2 and 5: the wire ---------------------------------------------------------------------


@pytest.fixture
def mtproto(request):
    """The transport-level server in its own process; yields its port."""
    server = subprocess.Popen(
        [sys.executable, str(SERVER), request.param], stdout=subprocess.PIPE, text=True
    )
    try:
        yield int(server.stdout.readline())
    finally:
        server.kill()
        server.wait(timeout=30)


def cli(tmp_path: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "SCRAPER_"))
    }
    environment.update(
        LAKE_DIR=str(tmp_path / "lake"),
        TELEGRAM_API_ID="123456",
        TELEGRAM_API_HASH="0123456789abcdef0123456789abcdef",
        TELEGRAM_SERVER=f"127.0.0.1:{port}",
        TELEGRAM_SERVER_DC_ID="2",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "tgmed_scraper.cli", *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("mtproto", ["unknown-key"], indirect=True)
def test_an_unknown_auth_key_prints_one_line_and_no_traceback(tmp_path, mtproto):
    session = StringSession()
    session.set_dc(2, "127.0.0.1", mtproto)
    session.auth_key = AuthKey(bytes(range(256)))
    done = cli(tmp_path, mtproto, "scrape", "--channel", "padded", TELEGRAM_SESSION=session.save())
    assert done.returncode == 2
    [line] = done.stderr.splitlines()  # stderr whole: one line
    assert "TELEGRAM_SESSION is not known to the Telegram server" in line
    assert "tgmed-scraper login" in line
    assert json.loads(done.stdout.splitlines()[-1])["error"] in line


@pytest.mark.parametrize("mtproto", ["foreign-rsa"], indirect=True)
def test_a_first_login_without_the_servers_key_names_the_variable(tmp_path, mtproto):
    done = cli(tmp_path, mtproto, "login")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "set TELEGRAM_SERVER_PUBLIC_KEY" in line and "a retry will not help" in line
    assert "a retry may succeed" not in done.stderr


@pytest.mark.parametrize("mtproto", ["foreign-rsa"], indirect=True)
def test_a_first_login_with_another_servers_key_says_so(tmp_path, mtproto):
    public, _ = rsa.newkeys(512)
    done = cli(tmp_path, mtproto, "login", TELEGRAM_SERVER_PUBLIC_KEY=public.save_pkcs1().decode())
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "does not use the key in TELEGRAM_SERVER_PUBLIC_KEY" in line
    assert "a retry will not help" in line
