"""What the refresh window costs: re-reading the last 7 days of a 100k-message channel.

The channel: 100,000 posts over a year (one every 315 s, about 274 a day, so 7 days hold
about 1,900 posts), served by the fake Telegram (tgmed_sample.fake_telegram, real
Telethon TL objects) from memory, so what is measured is the scraper's own work: the
requests' bookkeeping, records, observations, lake files and the group commit. Against
a real server each batch of 100 ids is one `messages.getHistory` round trip more; the
request count is printed.

Baseline, measured in the same run on the same posts: the same window's posts scraped
as new messages (a first run `--since` 7 days ago: the scraper's ordinary path, the
same records and observations written). Also measured: a scrape with nothing new and no
refresh (the fixed cost of a scrape), so the refresh's added seconds show.

    uv run python bench/bench_refresh.py [--messages 100000] [--days 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tgmed_common.lake import MESSAGES, Lake
from tgmed_common.state import HighWaterMarks
from tgmed_sample.fake_telegram import FakeTelegramClient, message
from tgmed_scraper.scrape import ScrapeOptions, scrape_channels

CHANNEL = "bigpharmacy"
CHANNEL_ID = 1000


class IndexedFake(FakeTelegramClient):
    """The fake with O(page) listings (ids are 1..N, so an id is its index + 1): the
    generic fake filters the whole history per call, which would be measured too."""

    async def iter_messages(self, entity, limit=None, offset_date=None, offset_id=0, **kw):
        self.iter_calls.append({"offset_id": offset_id, "limit": limit, **kw})
        history = self.channels[entity.username]
        min_id, reverse = kw.get("min_id", 0), kw.get("reverse", False)
        if reverse:  # oldest first from min_id (or from offset_date)
            first = min_id
            if offset_date is not None:
                first = max(first, next(i for i, m in enumerate(history) if m.date >= offset_date))
            chosen = history[first:]
        else:  # newest first below offset_id
            top = (offset_id - 1) if offset_id else len(history)
            chosen = history[max(0, top - (limit or top)) : top][::-1]
        for item in chosen[:limit] if limit is not None else chosen:
            yield self._finish(item, entity)


def build_channel(count: int, every_seconds: float) -> list:
    return [message(CHANNEL_ID, i, every_hours=every_seconds / 3600) for i in range(1, count + 1)]


def timed(client, lake: Lake, options: ScrapeOptions) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = asyncio.run(scrape_channels(client, lake, [CHANNEL], options))
    elapsed = time.perf_counter() - started
    result = summary.as_dict()
    assert result["outcome"] == "ok", result
    return elapsed, result


def lake_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "raw").rglob("*.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--span-days", type=float, default=365, help="the channel's age")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    every = args.span_days * 86400 / args.messages
    started = time.perf_counter()
    history = build_channel(args.messages, every)
    newest = history[-1].date
    now = newest + timedelta(hours=1)
    in_window = sum(1 for m in history if m.date >= now - timedelta(days=args.days))
    print(
        f"channel: {args.messages:,} messages over {args.span_days:g} days (one every "
        f"{every:.0f} s), {in_window:,} in the last {args.days} days; built in "
        f"{time.perf_counter() - started:.1f}s"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    common = {"download_photos": False, "now": lambda: now, "batch_size": 500}
    best = {"baseline": float("inf"), "refresh": float("inf"), "idle": float("inf")}
    try:
        for attempt in range(args.repeat):
            # baseline: the window's posts read as new (a first run since 7 days ago)
            fake = IndexedFake()
            fake.add_channel(CHANNEL, messages=history)
            lake = Lake(work / f"base{attempt}")
            seconds, base = timed(
                fake, lake, ScrapeOptions(since=now - timedelta(days=args.days), **common)
            )
            best["baseline"] = min(best["baseline"], seconds)
            base_bytes = lake_bytes(lake.root)
            # the refresh: the channel scraped up to its newest post, nothing new
            fake = IndexedFake()
            fake.add_channel(CHANNEL, messages=history)
            lake = Lake(work / f"refresh{attempt}")
            HighWaterMarks(lake, MESSAGES).advance(CHANNEL, args.messages)
            seconds, refresh = timed(fake, lake, ScrapeOptions(refresh_days=args.days, **common))
            best["refresh"] = min(best["refresh"], seconds)
            requests = sum(1 for c in fake.iter_calls if not c.get("reverse"))
            refresh_bytes = lake_bytes(lake.root)
            # the fixed cost: nothing new, no refresh
            fake = IndexedFake()
            fake.add_channel(CHANNEL, messages=history)
            seconds, _ = timed(fake, lake, ScrapeOptions(refresh_days=0, **common))
            best["idle"] = min(best["idle"], seconds)
            assert refresh["refreshed"] + refresh["service_messages"] == in_window
            assert base["messages"] == refresh["refreshed"]
        refreshed = refresh["refreshed"]
        print(
            f"baseline (the same {base['messages']:,} posts scraped as new): "
            f"{base['messages'] / best['baseline']:,.0f} messages/s ({best['baseline']:.2f}s), "
            f"{base_bytes / 1e6:.1f} MB written"
        )
        print(
            f"refresh of {args.days} days: {refreshed:,} posts re-read "
            f"({refresh['service_messages']} service messages) in {requests} requests of "
            f"100 ids: {refreshed / best['refresh']:,.0f} messages/s "
            f"({best['refresh']:.2f}s), {refresh_bytes / 1e6:.1f} MB written"
        )
        print(
            f"a scrape with nothing new and no refresh: {best['idle']:.3f}s; the refresh "
            f"adds {best['refresh'] - best['idle']:.2f}s"
        )
        print(f"ratio refresh/baseline (messages/s): {best['baseline'] / best['refresh']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
