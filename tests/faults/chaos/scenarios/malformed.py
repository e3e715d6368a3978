"""Scenario 6: malformed input at volume. 1,000 broken items (Telegram Desktop exports
and lake files of both streams, every kind of damage the stages' tests know) beside good
ones, in one run: every broken item set aside with a note naming its file and line,
every good one through to the marts in that same run, the run FAILURE with one alert
that says what was set aside (not one alert per file). Then the user removes the broken
exports and the next run succeeds without setting anything else aside."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import psycopg

from chaos.baseline import Baseline
from chaos.malformed import Broken, broken_exports, lake_files
from chaos.platform import LocalPlatform, log
from chaos.report import Row
from chaos.trial import collect_leftover_processes

TOTAL = 1000
# each broken export is a step of its own (a process): a few dozen keep the run short
EXPORTS = 20
# a second alert for the same run would come within a sensor interval or two
SECOND_ALERT_WINDOW = 75


def quarantine_notes(lake: Path) -> list[dict]:
    notes = []
    for path in sorted((lake / "quarantine").rglob("*.reason.json")):
        note = json.loads(path.read_text(encoding="utf-8"))
        note["_note"] = str(path)
        notes.append(note)
    return notes


def check_set_aside(broken: list[Broken], notes: list[dict], row: Row) -> int:
    """How many broken items have a quarantine note naming their file (and line, where
    the damage is on one); the others are counted by stream, with an example each."""
    by_original = {Path(n["original_path"]).resolve(): n for n in notes}
    ok = 0
    missing: dict[str, list[Broken]] = {}
    unlocated: dict[str, list[tuple[Broken, str]]] = {}
    for item in broken:
        note = by_original.get(item.path.resolve())
        if note is None or (item.stream != "exports" and item.path.exists()):
            missing.setdefault(item.stream, []).append(item)
            continue
        reason = note["reason"]
        where = item.path.name
        if item.stream == "exports":
            located = item.line is None or f"message #{item.line}" in reason
        else:
            located = item.line is None or f"{where}:{item.line}:" in reason
        if where not in reason or not located:
            unlocated.setdefault(item.stream, []).append((item, reason))
            continue
        ok += 1
    for stream, items in missing.items():
        example = items[0]
        row.problems.append(
            f"{len(items)} broken {stream} files not set aside, e.g. {example.path.name} "
            f"({example.kind})"
        )
    for stream, pairs in unlocated.items():
        example, reason = pairs[0]
        row.problems.append(
            f"{len(pairs)} {stream} notes without file and line, e.g. {example.path.name} "
            f"({example.kind}): {reason[:200]}"
        )
    return ok


def good_keys_loaded(url: str, good: list[Path]) -> tuple[int, int]:
    """(records of the good lake files, how many of them are in the raw tables)."""
    wanted: dict[str, set[tuple]] = {"telegram_messages": set(), "yolo_detections": set()}
    for path in good:
        stream = "telegram_messages" if "telegram_messages" in path.parts else "yolo_detections"
        for line in path.read_bytes().splitlines():
            record = json.loads(line)
            wanted[stream].add((record["channel_username"], record["message_id"]))
    found = 0
    with psycopg.connect(url) as conn:
        for stream, keys in wanted.items():
            if conn.execute("select to_regclass(%s)", (f"raw.{stream}",)).fetchone()[0] is None:
                continue  # nothing loaded yet: the loader never ran (its table not made)
            have = set(
                conn.execute(
                    f"select channel_username, message_id from raw.{stream}"  # noqa: S608
                ).fetchall()
            )
            found += len(keys & have)
    return sum(len(k) for k in wanted.values()), found


def good_messages_in_marts(url: str, good: list[Path]) -> tuple[int, int]:
    """(good message records, how many of them reached marts.fct_messages)."""
    wanted = {
        (record["channel_username"], record["message_id"])
        for path in good
        if "telegram_messages" in path.parts
        for record in map(json.loads, path.read_bytes().splitlines())
    }
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('marts.fct_messages')").fetchone()[0] is None:
            return len(wanted), 0
        have = set(conn.execute("select channel_key, message_id from marts.fct_messages"))
    return len(wanted), len(wanted & have)


def run(platform: LocalPlatform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("6. malformed input at volume", platform.mode)
    started = time.monotonic()
    platform.reset_data()
    from tgmed_common.lake import Lake

    scratch = platform.workdir / "broken-exports"
    shutil.rmtree(scratch, ignore_errors=True)
    exports = broken_exports(platform.exports / "CheMed123", scratch, EXPORTS)
    for item in exports:  # beside the good exports, where the pipeline reads them
        shutil.move(item.path.parent, platform.exports / item.path.parent.name)
    exports = [
        Broken(platform.exports / i.path.parent.name / "result.json", i.kind, i.line, i.stream)
        for i in exports
    ]
    broken_lake, good_lake = lake_files(Lake(platform.lake), TOTAL - EXPORTS)
    broken = exports + broken_lake
    row.trials = 1
    row.injected = (
        f"{len(broken)} broken ({len(exports)} exports, {len(broken_lake)} lake files) beside "
        f"3 good exports and {len(good_lake)} good lake files"
    )
    log(f"  {row.injected}")
    try:
        outcome = platform.run()
        if outcome.status != "FAILURE":
            row.problems.append(f"the run ended {outcome.status} (expected FAILURE)")
        run_id = outcome.run.run_id
        ended = outcome.run.end_time or time.time()
        first = platform.receiver.wait_for(run_id, timeout=150)
        row.alert_seconds.append(None if first is None else max(0.0, first.received_at - ended))
        if first is not None:
            # wait a while for a second one: there must not be one
            platform.receiver.wait_for(run_id + "-never", timeout=SECOND_ALERT_WINDOW)
            alerts = platform.receiver.about(run_id)
            if len(alerts) != 1:
                row.problems.append(f"{len(alerts)} alerts for the run (expected one)")
            text = first.text
            log(f"  alert: {text[:300]!r}")
            if "quarantined" not in text and "set aside" not in text:
                row.problems.append("the alert does not say that input was set aside")
        notes = quarantine_notes(platform.lake)
        set_aside = check_set_aside(broken, notes, row)
        total_good, loaded = good_keys_loaded(platform.url, good_lake)
        if loaded != total_good:
            row.problems.append(
                f"good input not through in the run that set the bad aside: {loaded} of "
                f"{total_good} good lake records loaded"
            )
        good_messages, in_marts = good_messages_in_marts(platform.url, good_lake)
        if in_marts != good_messages:
            row.problems.append(
                f"good messages not in the marts after the run that set the bad aside: "
                f"{in_marts} of {good_messages} in marts.fct_messages"
            )
        log(
            f"  set aside with file and line: {set_aside}/{len(broken)}; good records "
            f"loaded {loaded}/{total_good}; good messages in the marts {in_marts}/{good_messages}"
        )
        # the user's fix: the broken exports removed; the next run must succeed
        for item in exports:
            shutil.rmtree(item.path.parent)
        again = platform.run()
        if again.status != "SUCCESS":
            row.problems.append(
                f"the run after removing the broken exports ended {again.status}: "
                + " | ".join(again.events.failures())[:400]
            )
        total_good, loaded = good_keys_loaded(platform.url, good_lake)
        if loaded != total_good:
            row.problems.append(f"good lake records after the next run: {loaded}/{total_good}")
            row.lost += total_good - loaded
        newly = len(quarantine_notes(platform.lake)) - len(notes)
        if newly:
            row.problems.append(f"the next run set aside {newly} more files")
        collect_leftover_processes(platform, row, "malformed input")
        from chaos.snapshot import lake_snapshot

        row.leftovers += [f"temporary file {p}" for p in lake_snapshot(platform.lake).temp_files]
    finally:
        for item in exports:
            shutil.rmtree(item.path.parent, ignore_errors=True)
    row.seconds = time.monotonic() - started
    return row
