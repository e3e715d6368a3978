"""The extract stage: its quality on the hand-labelled posts, and its time against the
loader's own work on the same messages, measured in the same run.

1. quality: precision and recall of product mentions and (product, price) pairs per
   language, on services/extract/tests/labelled/*.jsonl (bench/eval_extract_lib.py).
2. speed: `tgmed-extract run` (every process of the machine) over a lake of generated
   messages (bench_load's corpus: the sample's post writer, 50k distinct texts) against
   `tgmed-loader load messages` (2 workers) of the same files into PostgreSQL. Goal
   (issue 22): extraction costs at most the load, ratio extract/load <= 1. Then again
   with every text distinct (each message gets its own line), where no text repeats.
3. a re-run: nothing to extract (the version's files exist).
4. a scrape's refresh window: the distinct lake's posts written again in new files (new
   scrape times, same texts), with the findings store the distinct run left: what an
   incremental run pays for posts an earlier run extracted (a lookup each).

    uv run python bench/bench_extract.py [--messages 200000] [--files 40] [--cases corpus]

Needs a PostgreSQL for the loader: DATABASE_URL's server, or the embedded one started here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from bench_load import make_lake
from eval_extract_lib import evaluate

from tgmed_common.lake import Lake, read_messages
from tgmed_devdb.server import create_database, start, stop
from tgmed_extract import stage
from tgmed_extract.findings_store import store_path
from tgmed_extract.stage import run_extraction, version_tag
from tgmed_loader.load import load_stream
from tgmed_loader.schema import ensure_raw_schema

LABELLED = Path(__file__).parents[1] / "services" / "extract" / "tests" / "labelled"


def quality() -> None:
    rows = []
    for path in sorted(LABELLED.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    print(f"quality on {len(rows)} labelled posts ({LABELLED}):")
    evaluate(rows, 0)


def copy_lake(source: Lake, target: Lake, change, suffix: str = "") -> None:
    """Every message file of `source` into `target` (named `<stem><suffix>`), each record
    changed by `change(record)`, a dict of fields to update."""
    for path in source.message_files():
        records = [r.model_copy(update=change(r)) for r in read_messages(path)]
        day = path.parent.parent.name.removeprefix("date=")
        channel = path.parent.name.removeprefix("channel=")
        target.write_records(
            target.message_file(date.fromisoformat(day), channel, f"{path.stem}{suffix}"),
            records,
        )


DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")


def letters(value: int | str) -> str:
    """A number or a name with its digits written as letters: a tag that adds no figure
    to a text ("chemed123" would: the price scanner reads its 123)."""
    return str(value).translate(DIGITS_AS_LETTERS)


def distinct_copy(source: Lake, target: Lake) -> None:
    """The same files with every text made distinct (its own last line). The line holds
    no digit: a number there would give every text a figure to place and send it down
    the price path that a post without one skips (105 against 73 µs a text, measured on
    the sample's posts)."""
    copy_lake(
        source,
        target,
        lambda r: {"text": f"{r.text}\nref {letters(r.channel_username)} {letters(r.message_id)}"},
    )


def refresh_copy(source: Lake, target: Lake) -> None:
    """The same posts read again a day later, in files of a new run (a refresh window),
    and the findings store of the source's extraction (an earlier run's)."""
    copy_lake(
        source, target, lambda r: {"scraped_at": r.scraped_at + timedelta(days=1)}, "-refresh"
    )
    store = store_path(target.root, version_tag())
    store.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(store_path(source.root, version_tag()), store)


def race(url: str, lake: Lake, name: str, workers: int) -> float:
    database = create_database(url, f"bench_extract_{name}", replace=True)
    with psycopg.connect(database) as conn:
        ensure_raw_schema(conn)
    started = time.perf_counter()
    extracted = run_extraction(lake, workers)
    extract_seconds = time.perf_counter() - started
    loaded = load_stream(database, lake, "messages", workers=2)
    assert loaded.rows == extracted.messages, (loaded.rows, extracted.messages)
    ratio = extract_seconds / loaded.seconds
    print(
        f"{name}: extract {extracted.messages:,} messages in {extract_seconds:.1f}s "
        f"({extracted.messages / extract_seconds:,.0f}/s, {extracted.workers} processes, "
        f"{extracted.extracted:,} texts extracted, {extracted.reused:,} reused, "
        f"{extracted.remembered:,} from earlier runs); load "
        f"{loaded.rows:,} in {loaded.seconds:.1f}s ({loaded.rows / loaded.seconds:,.0f}/s); "
        f"extract/load = {ratio:.2f} (goal <= 1)"
    )
    started = time.perf_counter()
    again = run_extraction(lake, workers)
    assert again.messages == 0 and again.files == 0
    print(f"{name}: re-run {time.perf_counter() - started:.2f}s, nothing extracted")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="extract processes (0: cores)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--cases", default="corpus,distinct,refresh", help="which speed cases (comma-separated)"
    )
    args = parser.parse_args()
    if not args.skip_quality:
        quality()
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    server = None
    try:
        url = os.environ.get("DATABASE_URL")
        if not url:
            server = work / "pgdata"
            url = start(server)
        lake = Lake(work / "lake")
        total = make_lake(lake, args.messages, args.files)
        print(f"lake: {total:,} messages in {args.files} files")
        cases = set(args.cases.split(","))
        if "corpus" in cases:
            race(url, lake, "corpus", args.workers)
        if cases & {"distinct", "refresh"}:
            distinct = Lake(work / "distinct")
            distinct_copy(lake, distinct)
            race(url, distinct, "distinct", args.workers)  # the refresh's store comes from it
        if "refresh" in cases:
            refreshed = Lake(work / "refresh")
            refresh_copy(distinct, refreshed)
            stage._seen.clear()  # a later run is a new process: only the store remembers
            race(url, refreshed, "refresh", args.workers)  # texts an earlier run extracted
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
