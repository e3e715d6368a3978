import json
from datetime import timedelta

import psycopg
import pytest

from tgmed_common.records import ChannelSnapshotRecord, DetectionRecord, MessageObservationRecord
from tgmed_loader.cli import stage_report
from tgmed_loader.load import load_stream


def count(url, table="raw.telegram_messages"):
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]  # noqa: S608


def test_loading_twice_gives_identical_rows_and_skips_every_file(db_url, lake, helpers):
    for part in range(6):
        records = [
            helpers.message(ch, part * 100 + i)
            for ch in ("chemed123", "tikvahpharma")
            for i in range(1, 51)
        ]
        helpers.write_file(lake, f"run-{part:04d}", records[:50])
        helpers.write_file(lake, f"runb-{part:04d}", records[50:])
    first = load_stream(db_url, lake, "messages", workers=2)
    assert first.loaded == 12 and first.rows == 600 and first.quarantined == 0
    assert count(db_url) == 600
    second = load_stream(db_url, lake, "messages", workers=2)
    assert second.loaded == 0 and second.skipped == 12 and second.rows == 0
    assert count(db_url) == 600
    with psycopg.connect(db_url) as conn:
        audit = conn.execute("select count(*), sum(row_count) from raw.load_audit").fetchone()
    assert audit == (12, 600)


def test_same_bytes_under_another_name_are_skipped_by_checksum(db_url, lake, helpers):
    path = helpers.write_file(lake, "a", [helpers.message("chemed123", 1)])
    load_stream(db_url, lake, "messages", workers=1)
    copy = path.with_name("b.jsonl")
    copy.write_bytes(path.read_bytes())
    again = load_stream(db_url, lake, "messages", workers=1)
    assert again.skipped == 2 and again.loaded == 0 and count(db_url) == 1


def test_newer_scrape_updates_the_row_and_older_one_does_not(db_url, lake, helpers):
    t0 = helpers.T0
    helpers.write_file(lake, "r1", [helpers.message("chemed123", 1, views=10, scraped=t0)])
    load_stream(db_url, lake, "messages", workers=1)
    newer = helpers.message("chemed123", 1, views=99, scraped=t0 + timedelta(days=1))
    helpers.write_file(lake, "r2", [newer, helpers.message("chemed123", 2)])
    summary = load_stream(db_url, lake, "messages", workers=1)
    assert summary.upserted_files == 1
    older = helpers.message("chemed123", 1, views=50, scraped=t0 + timedelta(hours=1))
    helpers.write_file(lake, "r3", [older])
    load_stream(db_url, lake, "messages", workers=1)
    with psycopg.connect(db_url) as conn:
        views, source = conn.execute(
            "select (record->>'views')::int, source_file from raw.telegram_messages "
            "where channel_username = 'chemed123' and message_id = 1"
        ).fetchone()
    assert views == 99 and source.endswith("r2.jsonl")
    assert count(db_url) == 2


def test_repeated_key_inside_one_file_keeps_the_newest(db_url, lake, helpers):
    t0 = helpers.T0
    helpers.write_file(
        lake,
        "dup",
        [
            helpers.message("chemed123", 5, views=1, scraped=t0),
            helpers.message("chemed123", 5, views=7, scraped=t0 + timedelta(minutes=5)),
        ],
    )
    summary = load_stream(db_url, lake, "messages", workers=1)
    assert summary.loaded == 1 and summary.upserted_files == 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "select (record->>'views')::int from raw.telegram_messages"
        ).fetchone() == (7,)


def test_same_message_id_in_two_channels_does_not_collide(db_url, lake, helpers):
    helpers.write_file(lake, "a", [helpers.message("chemed123", 1)])
    helpers.write_file(lake, "b", [helpers.message("tikvahpharma", 1)])
    load_stream(db_url, lake, "messages", workers=1)
    assert count(db_url) == 2


def test_detections_load_keyed_by_model(db_url, lake, helpers):
    def detection(model_hash):
        return DetectionRecord(
            channel_username="chemed123",
            message_id=3,
            media_path="raw/x/3.jpg",
            model_name="yolov8n",
            model_hash=model_hash,
            image_width=640,
            image_height=480,
            detections=[
                {"class_id": 41, "class_name": "cup", "confidence": 0.8, "box": (1, 2, 3, 4)}
            ],
            detected_at=helpers.T0,
        )

    day = helpers.T0.date()
    lake.write_records(lake.detection_file(day, "chemed123", "d1"), [detection("aaa")])
    lake.write_records(lake.detection_file(day, "chemed123", "d2"), [detection("bbb")])
    summary = load_stream(db_url, lake, "detections", workers=1)
    assert summary.loaded == 2 and count(db_url, "raw.yolo_detections") == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_a_malformed_file_is_quarantined_and_the_rest_loads(db_url, lake, helpers, workers):
    good = helpers.write_file(lake, "good", [helpers.message("chemed123", i) for i in (1, 2)])
    bad = good.with_name("bad.jsonl")
    line = helpers.message("chemed123", 3).model_dump_json()
    bad.write_text(line + "\n" + line.replace('"message_id":3', '"message_id":"x"') + "\n")
    summary = load_stream(db_url, lake, "messages", workers=workers)
    assert summary.loaded == 1 and summary.quarantined == 1 and count(db_url) == 2
    assert not bad.exists()
    (note,) = lake.quarantined("telegram_messages")
    reason = json.loads(note.read_text())["reason"]
    assert "bad.jsonl:2" in reason and "message_id" in reason
    # what the orchestrator reads: the file, its line and why, typed
    report = stage_report(summary.as_dict())
    (item,) = report.set_aside
    assert item.where.endswith("bad.jsonl") and item.line == 2 and "message_id" in item.reason
    assert report.set_aside_total == 1 and report.counts["loaded"] == 1


def test_observations_and_snapshots_load_idempotently_and_keep_every_reading(db_url, lake, helpers):
    t0 = helpers.T0
    day = t0.date()

    def seen(views, at):
        return MessageObservationRecord(
            channel_username="chemed123",
            message_id=7,
            message_date=t0,
            views=views,
            reactions=[{"kind": "emoji", "reaction": "👍", "count": 2}],
            observed_at=at,
        )

    lake.write_records(lake.observation_file(day, "chemed123", "o1"), [seen(10, t0)])
    lake.write_records(
        lake.observation_file(day, "chemed123", "o2"), [seen(90, t0 + timedelta(days=1))]
    )
    snapshot = ChannelSnapshotRecord(channel_username="chemed123", subscribers=1500, observed_at=t0)
    lake.write_records(lake.snapshot_file(day, "chemed123", "s1"), [snapshot])
    first = {k: load_stream(db_url, lake, k, workers=1) for k in ("observations", "snapshots")}
    assert first["observations"].rows == 2 and first["snapshots"].rows == 1
    # a reading written again (a run that died before moving its mark) is not a new row
    lake.write_records(
        lake.observation_file(day, "chemed123", "o3"), [seen(10, t0), seen(95, t0 + timedelta(2))]
    )
    again = load_stream(db_url, lake, "observations", workers=1)
    assert again.loaded == 1 and again.upserted_files == 1
    assert count(db_url, "raw.telegram_message_observations") == 3
    assert count(db_url, "raw.telegram_channel_snapshots") == 1
    with psycopg.connect(db_url) as conn:
        views = conn.execute(
            "select array_agg((record->>'views')::int order by observed_at) "
            "from raw.telegram_message_observations"
        ).fetchone()[0]
        audited = conn.execute(
            "select stream, count(*) from raw.load_audit group by 1 order by 1"
        ).fetchall()
    assert views == [10, 90, 95]
    assert audited == [("telegram_channel_snapshots", 1), ("telegram_message_observations", 3)]


def test_a_malformed_observation_file_is_quarantined_beside_good_ones(db_url, lake, helpers):
    day = helpers.T0.date()
    good = MessageObservationRecord(
        channel_username="chemed123",
        message_id=1,
        message_date=helpers.T0,
        views=3,
        observed_at=helpers.T0,
    )
    lake.write_records(lake.observation_file(day, "chemed123", "good"), [good])
    bad = lake.observation_file(day, "chemed123", "bad")
    bad.write_text(good.model_dump_json().replace('"views":3', '"views":-3') + "\n")
    summary = load_stream(db_url, lake, "observations", workers=1)
    assert summary.loaded == 1 and summary.quarantined == 1
    (note,) = lake.quarantined("telegram_message_observations")
    assert "bad.jsonl:1" in json.loads(note.read_text())["reason"]
