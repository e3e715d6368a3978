"""Scenario 5: a FloodWait storm. The fake Telegram (real Telethon TL objects and
errors) answers FloodWait on every third call, of lengths cycling 1, 2, 3 seconds, and
one channel once gets a long one (an hour). Short waits must be waited out, the total
wait bounded by configuration; the long one fails that channel only, the others finish;
the run's metadata says which channel waits until when, and the alert names it. After
the wait has passed (the fake stops asking), the next run completes that channel."""

from __future__ import annotations

import json
import random
import re
import time
from datetime import UTC, datetime

from chaos.baseline import Baseline
from chaos.platform import ROOT, LocalPlatform, log
from chaos.report import Row
from chaos.scenarios.disk import compare_with_fake
from chaos.trial import await_alert, collect_leftover_processes

CHANNELS = {"chaosa": 30, "chaosb": 30, "chaosc": 30, "chaoslong": 30}
LONG = "chaoslong"
LONG_SECONDS = 3600
SHORT = [1, 2, 3]
ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?")


def total_wait_setting() -> str | None:
    """The variable that bounds the total FloodWait of a scrape, if the platform has one
    (.env.example lists every variable)."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    found = re.findall(r"^(SCRAPER_FLOOD_WAIT_\w*(TOTAL|BUDGET)\w*)=", text, re.M)
    return found[0][0] if found else None


def waits(platform: LocalPlatform) -> dict[str, list[int]]:
    """channel -> the FloodWait lengths the fake Telegram answered."""
    out: dict[str, list[int]] = {}
    if not platform.telegram_calls.exists():
        return out
    for line in platform.telegram_calls.read_text().splitlines():
        entry = json.loads(line)
        if "flood" in entry:
            out.setdefault(entry["channel"], []).append(entry["flood"])
    return out


def run(platform: LocalPlatform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("5. FloodWait storm", platform.mode)
    started = time.monotonic()
    platform.reset_data()
    channels = platform.fake_telegram(
        CHANNELS,
        flood_every=3,
        flood_seconds=SHORT,
        long_flood={"channel": LONG, "seconds": LONG_SECONDS},
    )
    config = platform.telegram_run_config(channels)
    outcome = platform.run(run_config=config)
    asked = waits(platform)
    row.trials = 1
    row.injected = (
        f"FloodWait every 3rd call ({sum(len(v) for v in asked.values())} answered: "
        f"{SHORT} s), {LONG_SECONDS} s once for {LONG}"
    )
    log(f"  {row.injected}; run {outcome.status} in {outcome.seconds:.0f} s")
    flood_at = time.time()
    if outcome.status != "FAILURE":
        row.problems.append(f"the run ended {outcome.status} (expected FAILURE: {LONG} waits)")
    else:
        ended = outcome.run.end_time or time.time()
        alert = await_alert(platform, outcome.run.run_id, ended, row)
        if alert and LONG not in alert:
            row.problems.append(f"the alert does not name {LONG}: {alert[:300]!r}")
    # the others finished, each short wait waited out
    short = {c: v for c, v in asked.items() if c != LONG}
    if not short or not all(short.values()):
        row.problems.append(f"the fake Telegram answered no short FloodWait: {asked}")
    from chaos.snapshot import lake_snapshot

    snap = lake_snapshot(platform.lake)
    keys = snap.tables["lake:telegram_messages"].keys
    for name in channels:
        if name == LONG:
            continue
        want = {(name, i) for i in range(1, CHANNELS[name] + 1) if i % 10}
        if missing := len(want - keys):
            row.problems.append(f"{name}: {missing} posts missing after its short waits")
            row.lost += missing
    setting = total_wait_setting()
    if setting is None:
        row.problems.append(
            "no configuration bounds the total FloodWait of a scrape (only each wait: "
            "SCRAPER_FLOOD_WAIT_MAX_SECONDS)"
        )
    # the run's metadata: which channel waits until when
    text = "\n".join(
        (e.get("message") or "") + json.dumps(e.get("error") or {}) for e in outcome.events.events
    )
    until = [
        m
        for m in ISO.finditer(text)
        if LONG in text[max(0, m.start() - 400) : m.end() + 400]
        and _near(m.group(0), flood_at + LONG_SECONDS)
    ]
    if not until:
        row.problems.append(
            f"the run's metadata does not say until when {LONG} must wait "
            f"(~{datetime.fromtimestamp(flood_at + LONG_SECONDS, UTC):%H:%M} UTC)"
        )
    collect_leftover_processes(platform, row, "FloodWait storm")
    # the wait has passed: the fake stops asking for the long one
    platform.fake_telegram(CHANNELS, flood_every=3, flood_seconds=SHORT)
    again = platform.run(run_config=config)
    if again.status != "SUCCESS":
        row.problems.append(
            f"the run after the wait ended {again.status}: "
            + " | ".join(again.events.failures())[:300]
        )
    found = compare_with_fake(platform, row, "after the wait")
    log(f"  after the wait: {again.status}; {found}")
    collect_leftover_processes(platform, row, "FloodWait storm, next run")
    row.seconds = time.monotonic() - started
    return row


def _near(stamp: str, expected: float, slack: float = 900) -> bool:
    try:
        value = datetime.fromisoformat(stamp.replace(" ", "T"))
    except ValueError:
        return False
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return abs(value.timestamp() - expected) < slack
