"""Scenario 4: the lake's disk full. The lake is a small tmpfs, filled up beforehand but
for a random share of what the clean run writes there (so the disk runs out part-way,
wherever that falls on this machine). Once through the import of Telegram Desktop
exports, once through the Telethon scrape (the fake Telegram). The stage must fail with
a message naming the lake's folder and what to do; nothing half-written (no temporary
file, every file whole, no photo cut short), each channel's mark at a batch it wrote;
after space is freed the next run completes and nothing is lost (nor duplicated)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform, log
from chaos.report import Row
from chaos.snapshot import lake_snapshot
from chaos.trial import await_alert, collect_leftover_processes, compare_with_clean

PAGE = 4096
SIZE = 32 * 2**20
FILLER = ".chaos-filler"  # hidden: the lake's readers skip it (not a temporary name)


def fill(root: Path, leave: int) -> None:
    stats = os.statvfs(root)
    free = stats.f_bavail * stats.f_frsize
    fd = os.open(root / FILLER, os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, max(PAGE, free - leave))
    finally:
        os.close(fd)


def check_nothing_half_written(
    platform: LocalPlatform, baseline_media: frozenset, row: Row, what: str
) -> None:
    snap = lake_snapshot(platform.lake)
    row.leftovers += [f"{what}: temporary file {p}" for p in snap.temp_files]
    for name in ("lake:telegram_messages", "lake:yolo_detections"):
        broken = [k for k in snap.tables[name].keys if k and k[0] == "unparseable"]
        if broken:
            row.problems.append(f"{what}: {len(broken)} half-written lines in {name}")
    cut = snap.tables["lake:telegram_media"].keys - baseline_media
    if cut and baseline_media:
        row.problems.append(f"{what}: {len(cut)} photos differ from the source (cut short?)")


def check_message(outcome_failures: list[str], lake: Path, row: Row, what: str) -> None:
    text = "\n".join(outcome_failures)
    if "no space left on the device holding" not in text or str(lake) not in text:
        row.problems.append(f"{what}: no failure names the lake's folder: {text[:300]!r}")
    if "free space there" not in text:
        row.problems.append(f"{what}: the failure does not say what to do: {text[:300]!r}")


def one(
    platform: LocalPlatform,
    baseline: Baseline,
    rng: random.Random,
    row: Row,
    label: str,
    run_config: dict | None,
    expected_bytes: int,
    clean_media: frozenset,
) -> None:
    share = rng.uniform(0.2, 0.8)
    leave = int(expected_bytes * share)
    platform.reset_data()
    platform.mount_small_lake(SIZE)
    try:
        fill(platform.lake, leave)
        what = f"{label} (room for {share:.0%} of the lake)"
        started = time.time()
        outcome = platform.run(run_config=run_config)
        log(f"  {what}: {outcome.status} in {outcome.seconds:.0f} s")
        if outcome.status != "FAILURE":
            row.problems.append(f"{what}: the run ended {outcome.status} on a full disk")
        else:
            # from the first step that hit the full disk (failed, or set up for a retry)
            ended = outcome.run.end_time or time.time()
            hit = outcome.events.first_failure_at() or started
            row.failure_seconds.append(max(0.0, ended - hit))
            await_alert(platform, outcome.run.run_id, ended, row)
            check_message(outcome.events.failures(), platform.lake, row, what)
        check_nothing_half_written(platform, clean_media, row, what)
        marks = lake_snapshot(platform.lake).marks
        collect_leftover_processes(platform, row, f"{what}, failed run")
        (platform.lake / FILLER).unlink()  # space freed
        again = platform.run(run_config=run_config)
        if again.status != "SUCCESS":
            row.problems.append(
                f"{what}: the run after freeing space ended {again.status}: "
                + " | ".join(again.events.failures())[:300]
            )
        after = lake_snapshot(platform.lake).marks
        moved_back = [c for c, m in marks.items() if after.get(c, 0) < m]
        if moved_back:
            row.problems.append(f"{what}: marks moved back: {moved_back}")
        if run_config is None:
            found = compare_with_clean(platform, baseline, row, what)
        else:
            found = compare_with_fake(platform, row, what)
        log(f"  {what}: after freeing space {again.status}; {found}")
        row.trials += 1
    finally:
        platform.unmount_lake()


def compare_with_fake(platform: LocalPlatform, row: Row, what: str) -> str:
    """The lake against what the fake Telegram holds: every post once, every photo."""
    import json

    config = json.loads(platform.telegram_config.read_text())
    want = {
        (name, i)
        for name, spec in config["channels"].items()
        for i in range(1, spec["messages"] + 1)
        if i % 10
    }
    snap = lake_snapshot(platform.lake)
    have = snap.tables["lake:telegram_messages"]
    lost, twice = len(want - have.keys), have.rows - have.distinct
    row.lost += lost
    row.duplicated += twice
    photos = sum(1 for name, i in want if i % 3 == 0)
    if snap.tables["lake:telegram_media"].rows != photos:
        row.problems.append(
            f"{what}: {snap.tables['lake:telegram_media'].rows} photos, expected {photos}"
        )
    if lost or twice:
        row.problems.append(f"{what}: lake lost {lost}, duplicated {twice}")
    row.leftovers += [f"{what}: temporary file {p}" for p in snap.temp_files]
    return f"lake lost {lost}, duplicated {twice}"


def run(platform: LocalPlatform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("4. lake disk full", platform.mode)
    started = time.monotonic()
    try:
        platform.mount_small_lake(2**20)
        platform.unmount_lake()
    except Exception as error:
        row.skipped = f"cannot mount a tmpfs here ({error})"
        return row
    clean_media = baseline.snapshot.tables["lake:telegram_media"].keys
    # the import: the clean run's lake, in pages
    expected = sum(-(-size // PAGE) * PAGE for size in _clean_sizes(platform, baseline))
    one(platform, baseline, rng, row, "import", None, expected, clean_media)
    # the Telethon scrape through the fake Telegram (no FloodWait)
    channels = platform.fake_telegram({"chaosa": 40, "chaosb": 40, "chaosc": 40})
    config = platform.telegram_run_config(channels)
    from tgmed_sample.photos import PhotoPool

    photo = -(-len(PhotoPool(seed=1).jpeg("coffee", 0)[0]) // PAGE) * PAGE
    expected = 3 * (13 * photo + 36 * PAGE)  # per channel: 13 photos, 36 posts
    one(platform, baseline, rng, row, "scrape", config, expected, frozenset())
    row.injected = "lake on a tmpfs filled part-way: import, scrape"
    row.seconds = time.monotonic() - started
    return row


def _clean_sizes(platform: LocalPlatform, baseline: Baseline) -> list[int]:
    """Sizes of the clean run's lake files, estimated from its snapshot: photos (the
    exports' own files) plus about 1 KiB per record."""
    photos = [p.stat().st_size for p in (platform.exports).rglob("photos/*") if p.is_file()]
    records = sum(
        baseline.snapshot.tables[name].rows
        for name in ("lake:telegram_messages", "lake:yolo_detections")
    )
    return photos + [1024] * records
