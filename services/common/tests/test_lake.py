import json
from datetime import UTC, date, datetime

import pytest

from tgmed_common import lake as lake_module
from tgmed_common.atomic import atomic_writer, is_temp, write_bytes_atomic
from tgmed_common.lake import (
    MESSAGES,
    Lake,
    LakeRecordError,
    MessageText,
    read_message_texts,
    read_messages,
)
from tgmed_common.records import MessageRecord
from tgmed_common.state import HighWaterMarks

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def records(n, channel="chemed123"):
    return [
        MessageRecord(
            source="export", channel_username=channel, message_id=i + 1, date=NOW, scraped_at=NOW
        )
        for i in range(n)
    ]


def test_paths_follow_the_contract(tmp_path):
    lake = Lake(tmp_path)
    path = lake.message_file(date(2026, 11, 1), "CheMed123", "run1")
    assert lake.relative(path) == (
        "raw/telegram_messages/date=2026-11-01/channel=chemed123/run1.jsonl"
    )
    assert lake.relative(lake.media_file("CheMed123", 5, ".JPG")) == (
        "raw/telegram_media/channel=chemed123/5.jpg"
    )
    with pytest.raises(ValueError, match="outside the lake"):
        lake.resolve("../../etc/passwd")


def test_written_file_reads_back_and_is_immutable(tmp_path):
    lake = Lake(tmp_path)
    path = lake.message_file(date(2026, 11, 1), "chemed123", "run1")
    assert lake.write_records(path, records(3)) == 3
    assert [r.message_id for r in read_messages(path)] == [1, 2, 3]
    with pytest.raises(FileExistsError):
        lake.write_records(path, records(1))
    assert len(list(read_messages(path))) == 3
    assert lake.message_files() == [path]


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "a" / "file.jsonl"
    with pytest.raises(RuntimeError), atomic_writer(target) as out:
        out.write(b"half a file")
        raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_readers_never_see_temp_files(tmp_path):
    lake = Lake(tmp_path)
    path = lake.message_file(date(2026, 11, 1), "chemed123", "run1")
    path.parent.mkdir(parents=True)
    stray = path.with_name(".run0.jsonl.tmp-abc")
    stray.write_text("{half")
    assert is_temp(stray)
    assert lake.message_files() == []


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"{not json}\n", 1, "Invalid JSON"),
        (None, 2, "truncated line"),
        (b'{"schema_version": 9}\n', 1, "schema_version 9"),
        (b'{"schema_version": 1, "source": "export"}\n', 1, "channel_username: Field required"),
        (b"\xff\xfe\n", 1, "UTF-8"),
    ],
)
@pytest.mark.parametrize("read", [lambda path: list(read_messages(path)), read_message_texts])
def test_bad_lines_name_file_and_line(tmp_path, content, line, reason, read):
    path = tmp_path / "bad.jsonl"
    if content is None:  # a good line, then a line cut short
        good = records(1)[0].model_dump_json()
        content = (good + "\n" + good[:40]).encode()
    path.write_bytes(content)
    with pytest.raises(LakeRecordError) as caught:
        read(path)
    assert caught.value.path == path and caught.value.line == line
    assert reason in str(caught.value) and f"bad.jsonl:{line}" in str(caught.value)


def test_the_text_reader_reads_what_the_full_reader_reads(tmp_path):
    """Canonical lines on the fast path, the forms only the full reader normalises (a
    channel in capitals, a time in another zone, an old schema version) through it."""
    base = {
        "schema_version": 2,
        "source": "export",
        "channel_username": "chemed123",
        "message_id": 7,
        "date": "2026-11-01T08:00:00Z",
        "scraped_at": "2026-11-02T09:30:00Z",
    }
    variants = [
        {},
        {"text": 'ፓራሲታሞል 500mg ዋጋ 55 ብር\n"quoted" \\ 🙂'},
        {"scraped_at": "2026-11-02T09:30:00.123456+00:00", "message_id": 8},
        {"channel_username": "@CheMed123", "message_id": 9},
        {"scraped_at": "2026-11-02T12:30:00+03:00", "message_id": 10},
        {"scraped_at": "2026-11-02 09:30:00Z", "message_id": 11},
        {"schema_version": 1, "message_id": 12},
    ]
    for number, change in enumerate(variants):
        path = tmp_path / f"messages-{number}.jsonl"
        path.write_text(json.dumps(base | change, ensure_ascii=number % 2 == 0) + "\n")
        full = [
            MessageText(m.channel_username, m.message_id, m.scraped_at, m.text)
            for m in read_messages(path)
        ]
        assert read_message_texts(path) == full, change
        assert full[0].scraped_at.tzinfo is UTC and full[0].channel_username == "chemed123"
    both = tmp_path / "both.jsonl"  # a file with a line the fast path leaves: all read fully
    both.write_text(json.dumps(base) + "\n" + json.dumps(base | variants[4]) + "\n")
    assert [m.scraped_at.hour for m in read_message_texts(both)] == [9, 9]


def test_quarantine_moves_lake_files_and_copies_outside_ones(tmp_path):
    lake = Lake(tmp_path / "lake")
    inside = lake.message_file(date(2026, 11, 1), "chemed123", "run1")
    write_bytes_atomic(inside, b"{bad\n")
    moved = lake.quarantine(inside, "line 1: bad JSON", stream=MESSAGES)
    assert not inside.exists() and moved.read_bytes() == b"{bad\n"
    assert "date=2026-11-01/channel=chemed123/run1.jsonl" in moved.as_posix()
    note = json.loads(moved.with_name(moved.name + ".reason.json").read_text())
    assert note["reason"] == "line 1: bad JSON"

    outside = tmp_path / "export" / "result.json"
    outside.parent.mkdir()
    outside.write_text("{")
    copied = lake.quarantine(outside, "broken", stream="exports")
    assert outside.exists() and copied.read_text() == "{"
    assert len(lake.quarantined()) == 2 and len(lake.quarantined("exports")) == 1


def test_high_water_marks_only_move_forward(tmp_path):
    marks = HighWaterMarks(Lake(tmp_path), MESSAGES)
    assert marks.get("chemed123") == 0
    assert marks.advance("chemed123", 10) == 10
    assert marks.advance("chemed123", 4) == 10
    assert marks.get("CheMed123") == 10
    state = Lake(tmp_path).state_file(MESSAGES, "chemed123")
    state.write_text("garbage")
    with pytest.raises(ValueError, match="delete it to re-scan"):
        marks.get("chemed123")


def test_atomic_write_survives_concurrent_creators(tmp_path):
    target = tmp_path / "x.jsonl"
    write_bytes_atomic(target, b"first\n", overwrite=False)
    with pytest.raises(FileExistsError):
        write_bytes_atomic(target, b"second\n", overwrite=False)
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_canonical_lines_never_go_through_the_full_reader(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    path = lake.message_file(date(2026, 11, 1), "chemed123", "run0")
    lake.write_records(path, records(3))  # as the writers write them
    monkeypatch.setattr(lake_module, "read_messages", lambda path: pytest.fail("full reader"))
    assert [m.message_id for m in read_message_texts(path)] == [1, 2, 3]
