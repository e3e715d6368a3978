"""Loader and dbt on 1M generated messages, against baselines measured in the same run.

1. load: `tgmed-loader load messages` (read, validate every line, COPY, audit; 2
   workers) against a bare COPY of the same rows, prebuilt in memory, into an
   identical keyed table (one COPY and commit per file). Goal: ratio >= 0.8.
2. re-run over loaded files against the first load. Goal: >= 50x faster.
3. dbt: incremental run after 1% new messages against a full refresh. Goal: <= 0.1x.

    uv run python bench/bench_load.py [--messages 1000000] [--files 200]

Needs a PostgreSQL: DATABASE_URL's server, or the embedded one started here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from tgmed_common.lake import Lake
from tgmed_common.records import (
    ChannelSnapshotRecord,
    MessageObservationRecord,
    MessageRecord,
    ReactionCount,
)
from tgmed_devdb.server import create_database, start, stop
from tgmed_loader.load import _escape, load_stream
from tgmed_loader.schema import ensure_raw_schema
from tgmed_loader.streams import STREAMS


def corpus(size: int, seed: int = 7) -> list[str]:
    """`size` distinct post texts written the way the sample's sellers write them (the
    sample generator's own post writer: real product names in English, brand and
    Amharic, prices in every format, contact lines, places, hashtags), over 10 channels
    shaped like the real three. A word's share of the corpus follows the products'
    popularity: the most named product is in about a fifth of the posts, the rarest in
    well under 1%, as on the real channels (the old generator repeated 6 texts, so
    every word matched a sixth of the corpus)."""
    import random

    from tgmed_sample.catalog import CHANNELS
    from tgmed_sample.generate import (
        ChannelWriter,
        _text_fields,
        channel_catalog,
        draw_post,
        extra_channels,
    )

    specs = list(CHANNELS) + extra_channels(7)
    texts = []
    for spec in specs:
        rng = random.Random(f"{seed}:{spec.username}")
        writer = ChannelWriter(spec, rng, pool=None, folder=Path())  # type: ignore[arg-type]
        catalog, popularity = channel_catalog(spec)
        for _ in range(size // len(specs) + 1):
            language, products = draw_post(rng, spec, catalog, popularity)
            fields = _text_fields(writer.post(products, language).parts)
            text = fields["text"]
            texts.append(
                text
                if isinstance(text, str)
                else "".join(part if isinstance(part, str) else part["text"] for part in text)
            )
    random.Random(seed).shuffle(texts)
    return texts[:size]


CORPUS_SIZE = 50_000  # distinct texts; message n gets text n % CORPUS_SIZE


CHANNELS = [f"bench_channel_{i:02d}" for i in range(10)]
FIRST_POST = datetime(2026, 6, 1, tzinfo=UTC)


def reactions_of(message_id: int) -> list:
    """Every third post has reactions (👍, and ❤ on every sixth)."""
    if message_id % 3:
        return []
    counts = [ReactionCount.model_construct(kind="emoji", reaction="👍", count=message_id % 40 + 1)]
    if message_id % 6 == 0:
        counts.append(
            ReactionCount.model_construct(kind="emoji", reaction="❤", count=message_id % 9 + 1)
        )
    return counts


def make_lake(
    lake: Lake,
    messages: int,
    files: int,
    start_id: int = 1,
    tag: str = "r",
    engagement: bool = False,
) -> int:
    """`messages` message records in `files` files (channels in turn, ids in order). With
    `engagement`, as a scrape writes them: reactions on the posts, and two readings of
    each post's counts (an hour after posting, and three days after, the newest; see
    write_snapshots for the channels' subscribers). Generated for the benchmarks only:
    labelled `bench_channel_*`, never in a demo."""
    texts = corpus(CORPUS_SIZE)
    per_file = messages // files
    scraped = datetime(2026, 11, 1, tzinfo=UTC)
    message_id = start_id
    for index in range(files):
        channel = CHANNELS[index % len(CHANNELS)]
        rows = []
        readings: dict[date, list] = {}
        for _ in range(per_file):
            posted = FIRST_POST + timedelta(minutes=message_id % 172_800)
            views = message_id % 5000
            reactions = reactions_of(message_id) if engagement else None
            rows.append(
                MessageRecord.model_construct(
                    schema_version=2 if engagement else 1,
                    source="telethon",
                    channel_username=channel,
                    channel_title=channel.title(),
                    channel_id=1000 + index % 10,
                    message_id=message_id,
                    date=posted,
                    edit_date=None,
                    text=texts[message_id % len(texts)],
                    views=views,
                    forwards=message_id % 7,
                    replies=message_id % 3,
                    media_type=None,
                    media_path=None,
                    grouped_id=None,
                    forwarded_from=None,
                    reply_to_message_id=None,
                    **({"reactions": reactions} if engagement else {}),
                    scraped_at=scraped,
                )
            )
            if engagement:
                for after, share in ((timedelta(hours=1), 0.4), (timedelta(days=3), 1.0)):
                    observed = posted + after
                    readings.setdefault(observed.date(), []).append(
                        MessageObservationRecord.model_construct(
                            schema_version=1,
                            source="telethon",
                            channel_username=channel,
                            channel_id=1000 + index % 10,
                            message_id=message_id,
                            message_date=posted,
                            views=int(views * share),
                            forwards=message_id % 7,
                            replies=message_id % 3,
                            reactions=reactions,
                            observed_at=observed,
                        )
                    )
            message_id += 1
        lake.write_records(
            lake.message_file(
                date(2026, 6, 1) + timedelta(days=index % 120), channel, f"{tag}-{index:05d}"
            ),
            rows,
        )
        for day, observations in readings.items():
            lake.write_records(
                lake.observation_file(day, channel, f"{tag}-{index:05d}"), observations
            )
    return per_file * files


def write_snapshots(lake: Lake, days: int = 124, every_hours: int = 6) -> int:
    """Each channel's subscribers every `every_hours` over `days` from the first post, as
    the scrapes' channel snapshots (growing by about a dozen a day)."""
    written = 0
    for number, channel in enumerate(CHANNELS):
        by_day: dict[date, list] = {}
        for step in range(days * 24 // every_hours):
            observed = FIRST_POST + timedelta(hours=every_hours * step)
            by_day.setdefault(observed.date(), []).append(
                ChannelSnapshotRecord.model_construct(
                    schema_version=1,
                    source="telethon",
                    channel_username=channel,
                    channel_id=1000 + number,
                    title=channel.title(),
                    description=None,
                    subscribers=5000 + 300 * number + step * 3,
                    observed_at=observed,
                )
            )
        for day, rows in by_day.items():
            written += lake.write_records(lake.snapshot_file(day, channel, "bench"), rows)
    return written


def bare_copy(url: str, lake: Lake) -> tuple[float, int]:
    """COPY prebuilt rows of every file into an identical keyed table, commit per file."""
    stream = STREAMS["messages"]
    buffers = []
    for path in stream.files(lake):
        out = bytearray()
        source = _escape(lake.relative(path).encode())
        for raw in io.BytesIO(path.read_bytes()):
            record = json.loads(raw)
            out += (
                (
                    f"{record['channel_username']}\t{record['message_id']}\t{record['date']}\t"
                    f"{record['scraped_at']}\t"
                ).encode()
                + _escape(raw)
                + b"\t"
                + source
                + b"\n"
            )
        buffers.append(bytes(out))
    rows = sum(b.count(b"\n") for b in buffers)
    with psycopg.connect(url) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute("drop table if exists bench.bare_messages")
        conn.execute("create table bench.bare_messages (like raw.telegram_messages including all)")
        conn.commit()
        columns = ", ".join(stream.copy_columns)
        started = time.perf_counter()
        for buffer in buffers:
            with (
                conn.cursor() as cursor,
                cursor.copy(f"copy bench.bare_messages ({columns}) from stdin") as copy,
            ):
                copy.write(buffer)
            conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("drop table bench.bare_messages")
        conn.commit()
    return seconds, rows


def dbt(url: str, target: Path, *args: str) -> float:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tgmed_transform.cli", "dbt", "--", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if not summary.get("success"):
        raise RuntimeError(f"dbt {args} failed: {summary}\n{done.stderr[-3000:]}")
    return seconds


def slowest_models(target: Path, count: int = 5) -> str:
    """The slowest nodes of the last dbt invocation (its run_results.json), and the span
    from the first node's start to the last one's end (the rest of the wall time is dbt's
    start-up, parse and its on-run hooks)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    ranked = sorted(results, key=lambda r: -r["execution_time"])[:count]
    times = [
        datetime.fromisoformat(t[edge].replace("Z", "+00:00"))
        for r in results
        for t in r.get("timing", [])
        for edge in ("started_at", "completed_at")
        if t.get(edge)
    ]
    span = (max(times) - min(times)).total_seconds() if times else float("nan")
    top = ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f}s" for r in ranked)
    return f"{top}; {len(results)} nodes from the first start to the last end {span:.1f}s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dbt", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = None
    try:
        url = os.environ.get("DATABASE_URL")
        if not url:
            server = work / "pgdata"
            url = start(server)
        url = create_database(url, "bench_load", replace=True)
        lake = Lake(work / "lake")
        started = time.perf_counter()
        total = make_lake(lake, args.messages, args.files)
        print(
            f"lake: {total:,} messages in {args.files} files "
            f"({time.perf_counter() - started:.0f}s to write)"
        )
        with psycopg.connect(url) as conn:
            ensure_raw_schema(conn)
        bare_seconds, bare_rows = bare_copy(url, lake)
        summary = load_stream(url, lake, "messages", workers=args.workers)
        assert summary.rows == total == bare_rows, (summary, total, bare_rows)
        rerun = load_stream(url, lake, "messages", workers=args.workers)
        assert rerun.skipped == args.files and rerun.rows == 0
        bare_rate, load_rate = bare_rows / bare_seconds, total / summary.seconds
        print(f"bare COPY: {bare_rate:,.0f} rows/s ({bare_seconds:.1f}s)")
        print(
            f"tgmed-loader ({args.workers} workers): {load_rate:,.0f} rows/s "
            f"({summary.seconds:.1f}s)"
        )
        print(f"ratio loader/bare COPY: {load_rate / bare_rate:.2f} (goal >= 0.8)")
        print(
            f"re-run over loaded files: {rerun.seconds:.2f}s, "
            f"{summary.seconds / rerun.seconds:,.0f}x faster than the first load (goal >= 50x)"
        )
        if args.skip_dbt:
            return
        target = work / "dbt-target"
        dbt(url, target, "seed")
        full = dbt(url, target, "run", "--full-refresh")
        print(f"dbt run --full-refresh: {full:.1f}s (slowest: {slowest_models(target)})")
        make_lake(lake, total // 100, max(1, args.files // 100), start_id=total + 1, tag="new")
        added = load_stream(url, lake, "messages", workers=args.workers)
        incremental = dbt(url, target, "run")
        print(
            f"dbt run after {added.rows:,} new messages (1%): {incremental:.1f}s "
            f"(slowest: {slowest_models(target)})"
        )
        print(f"ratio incremental/full refresh: {incremental / full:.3f} (goal <= 0.1)")
        with contextlib.suppress(Exception):
            build = dbt(url, target, "build")
            print(f"dbt build (models + all tests) after the increment: {build:.1f}s")
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
