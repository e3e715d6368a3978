"""The sample, through the real stages, into a real PostgreSQL: exports -> lake ->
loader -> dbt build. Shared by the cross-stage tests (warehouse, api)."""

from __future__ import annotations

import json
import math
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

import httpx
import psycopg
import pytest
import uvicorn
from telethon.tl import types

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app
from tgmed_common.lake import Lake, read_messages
from tgmed_common.records import DetectionRecord
from tgmed_devdb.server import with_user
from tgmed_loader.api_keys import create_key
from tgmed_sample.generate import generate
from tgmed_sample.photos import CONTENTS
from tgmed_scraper.export_import import import_exports

COCO_IDS = {"person": 0, "motorcycle": 3, "cat": 15, "tie": 27, "bottle": 39, "cup": 41}


def stage(main, argv: list[str]) -> dict:
    """Run a stage CLI in-process; returns its JSON summary (the last stdout line)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    summary["exit_code"] = code
    return summary


@pytest.fixture(scope="session")
def run_cli():
    """`stage`, for a test module's own fixtures: a stage CLI run in-process, its summary."""
    return stage


def write_detections(lake: Lake, truth: dict, run_id: str = "det-test") -> int:
    """Detection records for every sample photo, naming what is really in it (the
    generator knows each photo's source picture). Stand-in input until the yolo stage
    writes its own; the warehouse reads them the same way."""
    written = 0
    for path in lake.message_files():
        by_day: dict = {}
        for record in read_messages(path):
            if not record.media_path:
                continue
            source = truth["channels"][record.channel_username]["photos_by_message"][
                str(record.message_id)
            ]
            detections = [
                {
                    "class_id": COCO_IDS[name],
                    "class_name": name,
                    "confidence": 0.8,
                    "box": (10.0, 10.0, 200.0, 200.0),
                }
                for name in CONTENTS[source]
            ]
            by_day.setdefault(record.date.date(), []).append(
                DetectionRecord(
                    channel_username=record.channel_username,
                    message_id=record.message_id,
                    media_path=record.media_path,
                    model_name="yolov8n_int8.onnx",
                    model_hash="test-model",
                    image_width=640,
                    image_height=480,
                    detections=detections,
                    detected_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
            )
        for day, records in by_day.items():
            target = lake.detection_file(day, records[0].channel_username, f"{run_id}-{path.stem}")
            written += lake.write_records(target, records)
    return written


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory) -> tuple[Lake, dict, Path]:
    root = tmp_path_factory.mktemp("warehouse")
    truth = generate(root / "sample")
    lake = Lake(root / "lake")
    summary = import_exports(lake, root / "sample" / "exports")
    assert not summary.failed
    write_detections(lake, truth)
    return lake, truth, root


def build_warehouse(lake: Lake, url: str, target: Path) -> dict:
    """extract, init-db, load, dbt build into the database at `url`; the stages'
    summaries."""
    from tgmed_extract.cli import main as extractor
    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("LAKE_DIR", str(lake.root))
        patch.setenv("DBT_TARGET_PATH", str(target))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        return {
            "extract": stage(extractor, ["run"]),
            "init": stage(loader, ["init-db"]),
            "messages": stage(loader, ["load", "messages"]),
            "detections": stage(loader, ["load", "detections"]),
            "extractions": stage(loader, ["load", "extractions"]),
            "build": stage(transform, ["build"]),
        }


@pytest.fixture(scope="session")
def make_warehouse(sample_lake, fresh_database, tmp_path_factory):
    """A factory: a new database holding the loaded sample and the built marts."""
    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    lake, truth, _ = sample_lake

    def make(prefix: str) -> dict:
        url = fresh_database(prefix)
        target = tmp_path_factory.mktemp(f"dbt-target-{prefix}")
        return {
            "url": url,
            "truth": truth,
            "lake": lake,
            "summaries": build_warehouse(lake, url, target),
            "target": target,
            "loader": loader,
            "transform": transform,
            "stage": stage,
        }

    return make


@pytest.fixture(scope="module")
def warehouse(make_warehouse):
    """A database holding the loaded sample and the built marts (one per test module:
    warehouse tests change it)."""
    return make_warehouse("warehouse")


@pytest.fixture(scope="module")
def detected_warehouse(fresh_database, tmp_path_factory, yolo_bin):
    """The sample through the real detection stage (its own environment, .venv-yolo, run
    as a process the way the orchestrator's local mode runs it) and on into the marts."""
    import os
    import shutil
    import subprocess

    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    folder, model = yolo_bin
    root = tmp_path_factory.mktemp("detected")
    truth = generate(root / "sample")
    lake = Lake(root / "lake")
    assert not import_exports(lake, root / "sample" / "exports").failed
    env = {**os.environ, "LAKE_DIR": str(lake.root), "DETECT_MODEL": model}
    done = subprocess.run(
        [shutil.which("tgmed-yolo", path=folder or None), "detect"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    detect_summary = json.loads(done.stdout.strip().splitlines()[-1])
    url = fresh_database("detected")
    target = tmp_path_factory.mktemp("dbt-target-detected")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("LAKE_DIR", str(lake.root))
        patch.setenv("DBT_TARGET_PATH", str(target))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        summaries = {
            "detect": detect_summary,
            "init": stage(loader, ["init-db"]),
            "load": stage(loader, ["load", "all"]),
            "build": stage(transform, ["build"]),
        }
    return {"url": url, "truth": truth, "lake": lake, "summaries": summaries}


# --- engagement: real scrapes through the fake Telegram ---------------------------------

EAT = timezone(timedelta(hours=3))  # Addis Ababa: the days the marts count in


def addis_day(moment: datetime) -> date:
    return moment.astimezone(EAT).date()


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


SCENARIO_START = datetime(2026, 10, 3, 3, 0, tzinfo=UTC)  # a Saturday, 06:00 in Addis Ababa
SCENARIO_SCRAPES = tuple(SCENARIO_START + timedelta(hours=h) for h in (20.5, 44.5, 68.5, 92.5))
SCENARIO_SUBSCRIBERS = MappingProxyType(
    {
        "chemed123": (1500, 1540, 1610, 1650),
        "lobelia4cosmetics": (800, 812, 790, 805),  # a channel can lose subscribers
    }
)
SCENARIO_PEAK = MappingProxyType({"chemed123": (600, 50), "lobelia4cosmetics": (250, 20)})
AGE_BUCKETS = (0, 1, 3, 6, 12, 24, 48, 72, 96, 120, 144, 168)  # macros/post_age_bucket.sql


class EngagementScenario:
    """Two channels' lives over four days, seen by four daily scrapes (the scraper's own
    code, `scrape_channels`, over the fake Telegram's real Telethon objects, with its
    clock set to each scrape's time). Posts appear every 6 hours; each one's views grow
    with its age (fast in the first day, then slowly), its reactions with its views;
    subscribers change between scrapes. Channel `lobelia4cosmetics` has reactions on
    its first day's posts at the first scrape only (reactions then switched off): the
    newest scrape says none, and the marts must forget them.

    What every scrape read is kept here (`readings`, `snapshots`) as the truth the marts,
    the API and the dashboard are compared with; the expectations below are computed
    from it in plain Python, never from the warehouse."""

    START = SCENARIO_START
    POSTS = 16  # per channel, every 6 hours: Saturday to Tuesday (two ISO weeks)
    SCRAPES = SCENARIO_SCRAPES
    SUBSCRIBERS = SCENARIO_SUBSCRIBERS
    PEAK = SCENARIO_PEAK
    BUCKETS = AGE_BUCKETS

    def __init__(self) -> None:
        from tgmed_sample.fake_telegram import FakeTelegramClient, message

        self.fake = FakeTelegramClient()
        self.posts: dict[str, list] = {}
        for name in self.SUBSCRIBERS:
            self.fake.add_channel(name, messages=[])
            posts = []
            for message_id in range(1, self.POSTS + 1):
                post = message(self.fake.ids[name], message_id)
                post.date = self.START + timedelta(hours=6 * (message_id - 1))
                if getattr(post, "edit_date", None) is not None:
                    post.edit_date = post.date + timedelta(minutes=5)
                posts.append(post)
            self.posts[name] = posts
        self.readings: list[dict] = []
        self.snapshots: list[tuple[str, datetime, int]] = []

    def views(self, channel: str, message_id: int, age_hours: float) -> int:
        base, step = self.PEAK[channel]
        peak = base + step * (message_id % 7)
        return round(peak * (1 - math.exp(-age_hours / 18)))

    def reactions(self, channel: str, post, views: int, scrape: int) -> dict[str, int]:
        if channel == "lobelia4cosmetics":
            first_day = addis_day(post.date) == addis_day(self.START)
            return {"👏": 1 + post.id} if first_day and scrape == 0 else {}
        counts = {"👍": views // 40}
        if post.id % 2 == 0:
            counts["❤"] = views // 90
        if post.id % 3 == 0:
            counts["🔥"] = views // 150
        return {emoji: n for emoji, n in counts.items() if n > 0}

    def advance_to(self, scrape: int) -> datetime:
        """The fake Telegram as it is at scrape number `scrape`: the posts published by
        then, their counts and reactions, the subscribers. Records what will be read."""
        now = self.SCRAPES[scrape]
        for name, posts in self.posts.items():
            visible = [p for p in posts if p.date <= now]
            self.fake.channels[name][:] = visible
            subscribers = self.SUBSCRIBERS[name][scrape]
            self.fake.subscribers[name] = subscribers
            self.snapshots.append((name, now, subscribers))
            for post in visible:
                if not isinstance(post, types.Message):
                    continue
                age = (now - post.date).total_seconds() / 3600
                post.views = self.views(name, post.id, age)
                counts = self.reactions(name, post, post.views, scrape)
                post.reactions = types.MessageReactions(
                    results=[
                        types.ReactionCount(reaction=types.ReactionEmoji(emoticon=e), count=n)
                        for e, n in counts.items()
                    ]
                )
                self.readings.append(
                    {
                        "channel": name,
                        "message_id": post.id,
                        "posted_at": post.date,
                        "observed_at": now,
                        "age_hours": age,
                        "views": post.views,
                        "reactions": counts,
                        "subscribers": subscribers,
                    }
                )
        return now

    # --- what the marts must say, from the readings --------------------------------
    def newest(self) -> dict[tuple[str, int], dict]:
        """Each post's newest reading."""
        latest: dict[tuple[str, int], dict] = {}
        for reading in self.readings:
            latest[(reading["channel"], reading["message_id"])] = reading
        return latest

    @staticmethod
    def period_of(day: date, period: str) -> date:
        return week_of(day) if period == "week" else day

    def expected_subscribers(self, period: str) -> dict[tuple[str, date], int]:
        last: dict[tuple[str, date], tuple[datetime, int]] = {}
        for channel, when, count in self.snapshots:
            key = (channel, self.period_of(addis_day(when), period))
            if key not in last or when >= last[key][0]:
                last[key] = (when, count)
        return {key: count for key, (_, count) in last.items()}

    def expected_engagement(self, period: str) -> dict[tuple[str, date], dict]:
        groups: dict[tuple[str, date], list[dict]] = {}
        for (channel, _), reading in self.newest().items():
            day = self.period_of(addis_day(reading["posted_at"]), period)
            groups.setdefault((channel, day), []).append(reading)
        return {
            key: {
                "post_count": len(rows),
                "views_per_post": statistics.mean(r["views"] for r in rows),
                "views_per_subscriber": statistics.mean(
                    r["views"] / r["subscribers"] for r in rows
                ),
                "reactions_per_post": statistics.mean(sum(r["reactions"].values()) for r in rows),
            }
            for key, rows in groups.items()
        }

    def expected_reactions(self) -> dict[str, dict[str, int]]:
        """reaction -> channel -> users who reacted so (newest readings)."""
        totals: dict[str, dict[str, int]] = {}
        for (channel, _), reading in self.newest().items():
            for emoji, count in reading["reactions"].items():
                per_channel = totals.setdefault(emoji, {})
                per_channel[channel] = per_channel.get(channel, 0) + count
        return totals

    def expected_growth(self) -> dict[tuple[str, int], dict]:
        groups: dict[tuple[str, int], list[dict]] = {}
        for reading in self.readings:
            start = max(b for b in self.BUCKETS if b <= reading["age_hours"])
            groups.setdefault((reading["channel"], start), []).append(reading)
        return {
            key: {
                "reading_count": len(rows),
                "mean_hours_since_post": statistics.mean(r["age_hours"] for r in rows),
                "mean_views": statistics.mean(r["views"] for r in rows),
                "mean_views_per_subscriber": statistics.mean(
                    r["views"] / r["subscribers"] for r in rows
                ),
            }
            for key, rows in groups.items()
        }


@pytest.fixture(scope="session")
def scraped_warehouse(fresh_database, tmp_path_factory) -> dict:
    """The engagement scenario through the real stages: scrape 1 -> load -> dbt build,
    then scrapes 2 to 4 -> load -> dbt build (incremental). Returns the database URL and
    the scenario (its truth)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from tgmed_loader.cli import main as loader
    from tgmed_scraper.scrape import ScrapeOptions, scrape_channels
    from tgmed_transform.cli import main as transform

    root = tmp_path_factory.mktemp("scraped-engagement")
    lake = Lake(root / "lake")
    url = fresh_database("engagement")
    scenario = EngagementScenario()
    summaries: list[dict] = []

    def scrape(number: int) -> None:
        now = scenario.advance_to(number)
        options = ScrapeOptions(refresh_days=7, now=lambda: now)
        scraping = scrape_channels(scenario.fake, lake, list(scenario.SUBSCRIBERS), options)
        # in a thread of its own: the fixture may be set up inside a test whose browser
        # (Playwright's sync API) keeps an event loop running in this one
        with ThreadPoolExecutor(1) as thread:
            summary = thread.submit(asyncio.run, scraping).result()
        assert summary.outcome == "ok", summary.as_dict()
        summaries.append({"scrape": number, "observations": summary.total("observations")})

    def load_and_build() -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", url)
            patch.setenv("LAKE_DIR", str(lake.root))
            patch.setenv("DBT_TARGET_PATH", str(root / "dbt-target"))
            patch.setenv("DBT_LOG_PATH", str(root / "dbt-target" / "logs"))
            patch.setenv("TRANSFORM_PUBLISH_DOCS", "false")
            steps = {
                "init": stage(loader, ["init-db"]),
                "load": stage(loader, ["load", "telegram"]),
                "build": stage(transform, ["build"]),
            }
        for name, summary in steps.items():
            assert summary["exit_code"] == 0, (name, summary)
        summaries.append(steps)

    scrape(0)
    load_and_build()
    for number in range(1, len(scenario.SCRAPES)):
        scrape(number)
    load_and_build()
    # every post published by a scrape was read by it (all are inside the refresh window)
    assert sum(s.get("observations", 0) for s in summaries) == len(scenario.readings)
    return {"url": url, "scenario": scenario, "lake": lake, "summaries": summaries}


def product_key(name: str) -> str:
    """dbt's product_key macro, in Python."""
    import re

    return re.sub(r"[^a-z0-9\u1200-\u137f]+", "_", name.lower()).strip("_")


@pytest.fixture(scope="session")
def extracted(sample_lake) -> dict[str, dict]:
    """What the extract stage finds in the sample, per channel, in the shape of the
    generator's truth: `mentions` (product key -> posts naming it), `prices` (product key
    -> every birr price, oldest post first) and `latest` (product key -> the prices of its
    newest post). The marts and the API must answer exactly this; how close it is to
    what the generator wrote is tests/warehouse/test_extraction_quality.py's question."""
    from tgmed_common.lake import read_messages
    from tgmed_extract import extract

    lake = sample_lake[0]
    newest: dict[tuple[str, int], object] = {}
    for path in lake.message_files():
        for record in read_messages(path):
            key = (record.channel_username, record.message_id)
            if key not in newest or newest[key].scraped_at < record.scraped_at:
                newest[key] = record
    channels: dict[str, dict] = {}
    for record in sorted(newest.values(), key=lambda r: (r.date, r.message_id)):
        found = extract(record.text)
        channel = channels.setdefault(
            record.channel_username, {"mentions": Counter(), "prices": {}, "latest": {}}
        )
        channel["mentions"].update({product_key(m.product) for m in found.mentions})
        mine: dict[str, list[float]] = {}
        for price in found.prices:
            if price.product and price.currency == "ETB":
                mine.setdefault(product_key(price.product), []).append(price.amount)
        for product, prices in mine.items():
            channel["prices"].setdefault(product, []).extend(prices)
            channel["latest"][product] = set(prices)
    return channels


# The API over the sample's marts (tests/api, tests/security): one warehouse for the
# session (the API only reads it), the app served by a real uvicorn on a free port in a
# thread, and an HTTP client that carries an API key of scope `all`.


def make_key(owner_url: str, name: str, scope: str = "all", rate_limit: int | None = None) -> str:
    """A new API key in the warehouse at `owner_url` (the loader's role writes keys)."""
    with psycopg.connect(owner_url) as conn:
        return create_key(conn, name, scope, rate_limit)[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


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
def api_keys() -> tuple:
    """(make_key, bearer), for tests that make keys of their own."""
    return make_key, bearer


@pytest.fixture(scope="session")
def api_warehouse(make_warehouse) -> dict:
    built = make_warehouse("api")
    assert built["summaries"]["build"]["success"], built["summaries"]["build"]["failures"]
    return built


@pytest.fixture(scope="session")
def api_key(api_warehouse) -> str:
    """A key of scope `all` on the sample's warehouse, with a budget no test spends
    (schemathesis sends hundreds of requests a minute; tests/security tests the limit)."""
    return make_key(api_warehouse["url"], "tests", rate_limit=1_000_000)


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
def client(api_server, api_key) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30, headers=bearer(api_key)) as http:
        yield http


@pytest.fixture(scope="session")
def scraped_api_server(scraped_warehouse) -> Iterator[ThreadServer]:
    """The API over the warehouse of real scrapes (the engagement scenario)."""
    settings = ApiSettings(
        database_url=with_user(scraped_warehouse["url"], "tgmed_api"),
        statement_timeout_ms=300_000,
        pool_timeout_seconds=300,
    )
    with ThreadServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def scraped_api_key(scraped_warehouse) -> str:
    return make_key(scraped_warehouse["url"], "tests", rate_limit=1_000_000)


@pytest.fixture(scope="session")
def scraped_client(scraped_api_server, scraped_api_key) -> Iterator[httpx.Client]:
    headers = bearer(scraped_api_key)
    with httpx.Client(base_url=scraped_api_server.url, timeout=30, headers=headers) as http:
        yield http
