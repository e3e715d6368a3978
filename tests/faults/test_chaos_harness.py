"""The fault suite's own parts, checked quickly (make test): the comparison that counts
lost and duplicated rows, the table and the report file, the broken input it generates
(refused by the real importer and loader with file and line), the fake Telegram's
FloodWait schedule (Telethon's own error), and how stage processes are recognised."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos import report
from chaos.fake_telegram import StormClient
from chaos.malformed import broken_exports, lake_files
from chaos.progress import stage_command, without_timeout
from chaos.snapshot import Snapshot, TableState, compare, lake_snapshot


def table(name: str, keys: list[tuple], extra_rows: int = 0) -> TableState:
    return TableState(name, len(keys) + extra_rows, frozenset(keys))


def test_compare_counts_lost_duplicated_and_unexpected_rows():
    clean = Snapshot(
        tables={
            "raw.telegram_messages": table("raw.telegram_messages", [("a", 1), ("a", 2), ("b", 1)]),
            "marts.fct_messages": table("marts.fct_messages", [("k1",), ("k2",)]),
            "raw.load_audit": table("raw.load_audit", [("f1",)]),
            "marts.dbt_builds": table("marts.dbt_builds", [("i1",)]),
        }
    )
    after = Snapshot(
        tables={
            "raw.telegram_messages": table("raw.telegram_messages", [("a", 1), ("b", 1)]),
            "marts.fct_messages": table("marts.fct_messages", [("k1",), ("k2",), ("k3",)], 2),
            "raw.load_audit": table("raw.load_audit", [("f9",), ("f8",)]),  # bookkeeping
            "marts.dbt_builds": table("marts.dbt_builds", [("i2",), ("i3",)]),  # bookkeeping
            "marts.fct_x__dbt_tmp": table("marts.fct_x__dbt_tmp", [("z",)]),
        }
    )
    diff = compare(clean, after)
    assert diff.lost == {"raw.telegram_messages": 1}
    assert diff.duplicated == {"marts.fct_messages": 2}
    assert diff.unexpected == {"marts.fct_messages": 1}
    assert diff.extra_tables == ["marts.fct_x__dbt_tmp"]
    assert (diff.lost_rows, diff.duplicated_rows, diff.equal) == (1, 3, False)
    assert compare(clean, clean).equal
    assert (
        clean.tables["raw.telegram_messages"].checksum
        != after.tables["raw.telegram_messages"].checksum
    )


def test_report_rows_meet_the_goal_only_with_nothing_lost_left_or_late(tmp_path):
    good = report.Row(
        "1. x", "local", trials=2, injected="restart", failure_seconds=[3.0], alert_seconds=[31.0]
    )
    late = report.Row("2. y", "local", trials=1, failure_seconds=[121.0], alert_seconds=[5.0])
    silent = report.Row("3. z", "docker", trials=1, failure_seconds=[5.0], alert_seconds=[None])
    left = report.Row("4. w", "local", trials=1, leftovers=["process 12 tgmed-loader"])
    assert good.passed and not late.passed and not silent.passed and not left.passed
    text = report.table([good, late, silent, left])
    assert (
        "| 1. x | local | 2 | restart | 0 | 0 | 0 | max 3 s (1 runs) | 1/1, max 31 s | pass |"
        in text
    )
    assert "| 3. z | docker | 1 |  | 0 | 0 | 0 | max 5 s (1 runs) | 0/1 | FAIL |" in text
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Reliability\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    report.write(doc, [good, left], 600.0, "make chaos", "2 cores")
    written = doc.read_text()
    assert "intro" in written and "after" in written and "old" not in written
    assert "`make chaos`, 10.0 min" in written and "leftover: process 12" in written


def test_broken_lake_files_are_refused_by_the_real_loader_with_file_and_line(
    tmp_path, fresh_database
):
    from tgmed_common.lake import Lake
    from tgmed_loader.load import load_stream

    lake = Lake(tmp_path / "lake")
    broken, good = lake_files(lake, 60)
    url = fresh_database("chaos_malformed")
    summaries = [load_stream(url, lake, s, workers=1) for s in ("messages", "detections")]
    assert sum(s.quarantined for s in summaries) == len(broken)
    assert sum(s.loaded for s in summaries) == len(good)
    notes = {
        Path(n["original_path"]).resolve(): n["reason"]
        for n in (json.loads(p.read_text()) for p in lake.quarantined())
    }
    for item in broken:
        reason = notes[item.path.resolve()]
        where = f"{item.path.name}:{item.line}:" if item.line else item.path.name
        assert where in reason, (item.kind, reason)


def test_broken_exports_are_refused_by_the_real_importer_with_file_and_message(tmp_path):
    from tgmed_common.lake import Lake
    from tgmed_sample.generate import generate
    from tgmed_scraper.export_import import import_exports

    generate(tmp_path / "sample", posts_per_channel=12)
    good = tmp_path / "sample" / "exports" / "CheMed123"
    broken = broken_exports(good, tmp_path / "broken", 10)
    summary = import_exports(Lake(tmp_path / "lake"), tmp_path / "broken")
    assert summary.messages == 0 and len(summary.failed) == len(broken)
    for item in broken:
        reason = summary.failed[str(item.path)]
        assert str(item.path) in reason
        if item.line is not None:
            assert f"message #{item.line}" in reason, (item.kind, reason)


def test_the_fake_telegram_answers_floodwait_on_every_third_call(tmp_path):
    from telethon import errors

    calls = tmp_path / "calls.jsonl"
    client = StormClient(
        {
            "channels": {"chaosa": {"messages": 5}, "chaosb": {"messages": 5}},
            "flood_every": 3,
            "flood_seconds": [1, 2],
            "long_flood": {"channel": "chaosb", "seconds": 3600},
            "calls_file": str(calls),
        }
    )

    async def calls_in_a_row(name: str, count: int) -> list:
        outcomes = []
        for _ in range(count):
            try:
                outcomes.append((await client.get_entity(name)).username)
            except errors.FloodWaitError as wait:
                outcomes.append(wait.seconds)
        return outcomes

    a, b = "chaosa", "chaosb"
    assert asyncio.run(calls_in_a_row(a, 6)) == [a, a, 1, a, a, 2]
    # the long wait comes the first time chaosb's turn comes; then the cycle goes on
    assert asyncio.run(calls_in_a_row(b, 6)) == [b, b, 3600, b, b, 2]
    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [e["flood"] for e in logged if "flood" in e] == [1, 2, 3600, 2]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (
            ["/v/bin/python", "/v/bin/tgmed-loader", "load", "messages"],
            "tgmed-loader load messages",
        ),
        (["tgmed-yolo", "detect", "--shard", "0/1"], "tgmed-yolo detect --shard 0/1"),
        (["/v/bin/python", "-m", "dagster", "api", "grpc"], None),
    ],
)
def test_stage_processes_are_recognised_by_their_command(argv, command):
    assert stage_command(argv) == command


def test_a_stage_containers_command_is_read_past_its_timeout():
    """Every stage runs under coreutils `timeout`: a container's command starts with it
    (docker mode found no stage at all while it read only the first two words)."""
    cmd = ["timeout", "--kill-after=15", "3600", "tgmed-scraper", "import-export", "/e/x"]
    assert stage_command(without_timeout(cmd)) == "tgmed-scraper import-export /e/x"
    assert without_timeout(["tgmed-yolo", "detect"]) == ["tgmed-yolo", "detect"]


def test_lake_snapshot_counts_temp_files_marks_and_records(tmp_path):
    from tgmed_common.lake import Lake

    lake = Lake(tmp_path)
    _, good = lake_files(lake, 8)
    (good[0].parent / f".{good[0].name}.tmp-abc123").write_text("half")
    state = tmp_path / "state" / "telegram_messages" / "channel=good0.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"last_message_id": 7}))
    snap = lake_snapshot(tmp_path)
    assert len(snap.temp_files) == 1 and snap.marks == {"channel=good0": 7}
    messages = snap.tables["lake:telegram_messages"]
    assert messages.rows >= 5 * len(good) // 2
