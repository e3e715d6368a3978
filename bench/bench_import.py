"""Import throughput of a large Telegram Desktop sample (default 100k messages).

Baseline, measured in the same run on the same files: the least work any importer must
do, `json.load` of each export and `json.dumps` of each message to one JSONL file per
channel (no validation, no partitioning, no photos, no fsync). The ratio says what the
lake contract (validation, UTC dates, day partitions, atomic fsynced files, photo
copies, high-water marks) costs on top of that.

    uv run python bench/bench_import.py [--messages 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from tgmed_common.lake import Lake
from tgmed_sample.generate import generate
from tgmed_scraper.export_import import find_exports, import_exports


def baseline(exports: Path, out: Path) -> int:
    count = 0
    out.mkdir(parents=True, exist_ok=True)
    for export in find_exports(exports):
        document = json.load(export.open(encoding="utf-8"))
        with (out / f"{export.parent.name}.jsonl").open("w", encoding="utf-8") as sink:
            for message in document["messages"]:
                if message.get("type") == "message":
                    sink.write(json.dumps(message, ensure_ascii=False) + "\n")
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--photo-share", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        started = time.perf_counter()
        posts = -(-args.messages // args.channels)
        truth = generate(
            work / "sample",
            posts_per_channel=posts,
            days=120,
            extra=args.channels - 3,
            photo_share=args.photo_share,
        )
        total = sum(c["messages"] for c in truth["channels"].values())
        photos = sum(c["photos"] for c in truth["channels"].values())
        print(
            f"sample: {total:,} messages, {photos:,} photos, {args.channels} channels, "
            f"generated in {time.perf_counter() - started:.1f}s"
        )
        exports = work / "sample" / "exports"
        best_base = best_ours = float("inf")
        for attempt in range(args.repeat):
            started = time.perf_counter()
            assert baseline(exports, work / f"base{attempt}") == total
            best_base = min(best_base, time.perf_counter() - started)
            started = time.perf_counter()
            summary = import_exports(Lake(work / f"lake{attempt}"), exports)
            best_ours = min(best_ours, time.perf_counter() - started)
            assert summary.messages == total and not summary.failed
            started = time.perf_counter()
            again = import_exports(Lake(work / f"lake{attempt}"), exports)
            rerun = time.perf_counter() - started
            assert again.messages == 0
        print(
            f"baseline (json.load + json.dumps): {total / best_base:,.0f} messages/s "
            f"({best_base:.2f}s)"
        )
        print(
            f"import-export: {total / best_ours:,.0f} messages/s ({best_ours:.2f}s), "
            f"{summary.files} lake files, {summary.photos} photos copied"
        )
        print(f"re-run (nothing new): {rerun:.2f}s")
        print(f"ratio import/baseline: {best_base / best_ours:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
