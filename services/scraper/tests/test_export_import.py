import json
import re
import shutil

import pytest

from tgmed_common.lake import MESSAGES, Lake, read_messages
from tgmed_common.state import HighWaterMarks
from tgmed_sample.generate import generate
from tgmed_scraper import cli
from tgmed_scraper.export_import import channel_for, import_exports, parse_export


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    truth = generate(out, posts_per_channel=60, days=40)
    return out / "exports", truth


def lake_records(lake):
    return [r for path in lake.message_files() for r in read_messages(path)]


def test_import_twice_writes_no_new_records(sample, tmp_path):
    exports, truth = sample
    lake = Lake(tmp_path)
    first = import_exports(lake, exports)
    records = lake_records(lake)
    expected = sum(c["messages"] for c in truth["channels"].values())
    assert first.messages == len(records) == expected
    assert first.photos == sum(c["photos"] for c in truth["channels"].values())
    files_before = sorted(lake.message_files())
    second = import_exports(lake, exports)
    assert second.messages == 0 and second.files == 0 and second.photos == 0
    assert second.already_imported == expected
    assert sorted(lake.message_files()) == files_before
    assert len(lake_records(lake)) == expected


def test_records_carry_what_the_export_says(sample, tmp_path):
    exports, truth = sample
    lake = Lake(tmp_path)
    summary = import_exports(lake, exports / "tikvahpharma")
    chan = truth["channels"]["tikvahpharma"]
    assert summary.service_messages == chan["service_messages"]
    records = {r.message_id: r for r in lake_records(lake)}
    raw = json.loads((exports / "tikvahpharma" / "result.json").read_text())
    for message in raw["messages"]:
        if message["type"] != "message":
            assert message["id"] not in records
            continue
        record = records[message["id"]]
        assert record.source == "export" and record.channel_username == "tikvahpharma"
        assert record.channel_title == "Tikvah Pharma" and record.channel_id == raw["id"]
        assert record.views is None and record.forwards is None and record.replies is None
        assert int(record.date.timestamp()) == int(message["date_unixtime"])
        assert record.text == "".join(e["text"] for e in message["text_entities"])
        assert record.forwarded_from == message.get("forwarded_from")
        if "photo" in message:
            stored = lake.resolve(record.media_path)
            assert stored.read_bytes() == (exports / "tikvahpharma" / message["photo"]).read_bytes()
            assert record.media_type == "photo"
        if "edited_unixtime" in message:
            assert int(record.edit_date.timestamp()) == int(message["edited_unixtime"])
    assert any("ብር" in r.text for r in records.values())
    assert HighWaterMarks(lake, MESSAGES).get("tikvahpharma") == max(records)


def test_a_newer_export_adds_only_the_new_messages(sample, tmp_path):
    exports, _ = sample
    older = tmp_path / "older" / "chemed123"
    shutil.copytree(exports / "CheMed123", older)
    document = json.loads((older / "result.json").read_text())
    document["messages"] = document["messages"][:40]
    (older / "result.json").write_text(json.dumps(document, ensure_ascii=False))
    lake = Lake(tmp_path / "lake")
    first = import_exports(lake, older)
    second = import_exports(lake, exports / "CheMed123")
    ids = [r.message_id for r in lake_records(lake)]
    assert len(ids) == len(set(ids)) == first.messages + second.messages
    assert second.already_imported == first.messages


def _broken(exports, tmp_path, kind):
    """A copy of one channel's export, broken in one way; returns (folder, index)."""
    folder = tmp_path / "in" / "chemed123"
    shutil.copytree(exports / "CheMed123", folder)
    result = folder / "result.json"
    document = json.loads(result.read_text())
    index = next(i for i, m in enumerate(document["messages"]) if "photo" in m and i > 3)
    if kind == "broken json":
        result.write_text(result.read_text()[:5000])
        return folder, None
    if kind == "no id":
        del document["messages"][index]["id"]
    elif kind == "no date":
        del document["messages"][index]["date"]
        del document["messages"][index]["date_unixtime"]
    elif kind == "missing photo":
        (folder / document["messages"][index]["photo"]).unlink()
    elif kind == "bad text":
        document["messages"][index]["text"] = 42
    result.write_text(json.dumps(document, ensure_ascii=False))
    return folder, index


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("broken json", "not valid JSON (line"),
        ("no id", "missing 'id'"),
        ("no date", "missing 'date'"),
        ("missing photo", "is missing from the export"),
        ("bad text", "text is a int"),
    ],
)
def test_malformed_export_fails_clearly_writes_nothing_and_others_still_import(
    sample, tmp_path, monkeypatch, caplog, capsys, kind, says
):
    exports, truth = sample
    folder, index = _broken(exports, tmp_path, kind)
    shutil.copytree(exports / "lobelia4cosmetics", tmp_path / "in" / "lobelia4cosmetics")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["import-export", str(tmp_path / "in")])
    assert code == 1
    message = caplog.text
    assert str(folder / "result.json") in message and says in message
    if index is not None:
        assert f"message #{index}" in message
    assert "Nothing from this export was written" in message
    lake = Lake(tmp_path / "lake")
    channels = {r.channel_username for r in lake_records(lake)}
    assert channels == {"lobelia4cosmetics"}  # the good export beside it went through
    assert not (lake.root / "raw" / "telegram_media" / "channel=chemed123").exists()
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") == 0
    assert len(lake.quarantined("exports")) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert list(summary["failed"]) == [str(folder / "result.json")]
    assert summary["messages"] == truth["channels"]["lobelia4cosmetics"]["messages"]


def test_channel_name_from_option_folder_or_title(tmp_path):
    assert channel_for(tmp_path / "CheMed123" / "result.json", "x", None) == "chemed123"
    assert (
        channel_for(tmp_path / "ChatExport_2026-11-01" / "result.json", "Lobelia Cosmetics", None)
        == "lobelia_cosmetics"
    )
    assert channel_for(tmp_path / "whatever" / "result.json", "x", "@TikvahPharma") == (
        "tikvahpharma"
    )


def test_plain_string_text_and_files_not_included(tmp_path):
    export = tmp_path / "somechannel" / "result.json"
    export.parent.mkdir()
    export.write_text(
        json.dumps(
            {
                "name": "Some",
                "type": "public_channel",
                "id": 9,
                "messages": [
                    {
                        "id": 1,
                        "type": "message",
                        "date": "2026-10-01T10:00:00",
                        "text": "plain ETB 90",
                        "photo": "(File not included. Change data exporting settings to download.)",
                    },
                    {
                        "id": 2,
                        "type": "message",
                        "date_unixtime": "1790000000",
                        "text": "",
                        "file": "files/a.pdf",
                        "mime_type": "application/pdf",
                    },
                    {
                        "id": 3,
                        "type": "message",
                        "date_unixtime": "1790000001",
                        "text": "",
                        "media_type": "voice_message",
                        "file": "voice/a.ogg",
                    },
                ],
            }
        )
    )
    parsed = parse_export(export)
    first, second, third = parsed.records
    assert first.text == "plain ETB 90" and first.media_type == "photo"
    assert first.media_path is None and first.date.isoformat() == "2026-10-01T10:00:00+00:00"
    assert second.media_type == "document" and third.media_type == "voice"


def _layout_patterns() -> dict[str, re.Pattern]:
    """The lake layout documented in tgmed_common.lake's docstring, as regexes."""
    from tgmed_common import lake as lake_module

    run_id = r"\d{8}T\d{6}Z-[0-9a-f]{8}"
    parts = {
        "<run_id>": run_id,
        "<stamp>": run_id,
        "<part>": r"\d{4}",
        "<name>": r"[a-z0-9_]+",
        "<message_id>": r"\d+",
        "<ext>": r"[a-z0-9]+",
        "<stream>": r"[a-z_]+",
        "<path>": r".+",
        "YYYY-MM-DD": r"\d{4}-\d{2}-\d{2}",
    }
    found = {}
    for line in (lake_module.__doc__ or "").splitlines():
        template = line.strip().split(" ")[0]
        if line.startswith("    ") and template.count("/") >= 2:
            pattern = re.escape(template)
            for name, regex in parts.items():
                pattern = pattern.replace(re.escape(name), regex)
            found[template] = re.compile(pattern)
    return found


def test_the_lake_layout_documented_in_the_lake_module_is_what_an_import_writes(
    sample, tmp_path, monkeypatch
):
    exports, _ = sample
    lake = Lake(tmp_path / "lake")
    import_exports(lake, exports)
    folder, _ = _broken(exports, tmp_path, "no id")
    import_exports(lake, folder)  # quarantined, with its note
    patterns = _layout_patterns()
    assert len(patterns) == 9, patterns
    used = set()
    for path in sorted(p for p in lake.root.rglob("*") if p.is_file()):
        relative = path.relative_to(lake.root).as_posix()
        matches = [t for t, pattern in patterns.items() if pattern.fullmatch(relative)]
        assert matches, f"{relative} is not in the layout the lake module documents"
        used.update(matches)
    # what an import writes: messages, photos, the mark, the channel's lock, quarantine
    # (observations and snapshots come from scrapes, detections from the yolo stage,
    # extractions from the extract stage)
    written_by_others = ("yolo_detections", "observations", "snapshots", "message_extractions")
    assert {t for t in patterns if not any(w in t for w in written_by_others)} <= used


def test_reactions_are_read_when_the_export_has_them(sample, tmp_path):
    exports, _ = sample
    folder = tmp_path / "chemed123"
    shutil.copytree(exports / "CheMed123", folder)
    document = json.loads((folder / "result.json").read_text())
    posts = [m for m in document["messages"] if m["type"] == "message"]
    posts[0]["reactions"] = [
        {"type": "emoji", "count": 7, "emoji": "👍", "recent": [{"from": "A", "date": "x"}]},
        {"type": "custom_emoji", "count": 2, "document_id": "5368324170671202286"},
        {"type": "paid", "count": 3},
    ]
    posts[1]["reactions"] = []
    (folder / "result.json").write_text(json.dumps(document, ensure_ascii=False))
    lake = Lake(tmp_path / "lake")
    assert not import_exports(lake, folder).failed
    records = {r.message_id: r for r in lake_records(lake)}
    assert [(x.kind, x.reaction, x.count) for x in records[posts[0]["id"]].reactions] == [
        ("emoji", "👍", 7),
        ("custom_emoji", "custom_emoji:5368324170671202286", 2),
        ("paid", "paid", 3),
    ]
    assert records[posts[1]["id"]].reactions == []
    assert records[posts[2]["id"]].reactions is None  # the export does not say: unknown
    assert records[posts[2]["id"]].views is None  # exports carry no counts
    assert lake.observation_files() == [] and lake.snapshot_files() == []


def test_a_reaction_without_a_count_is_a_clear_export_error(sample, tmp_path):
    exports, _ = sample
    folder = tmp_path / "chemed123"
    shutil.copytree(exports / "CheMed123", folder)
    document = json.loads((folder / "result.json").read_text())
    post = next(m for m in document["messages"] if m["type"] == "message")
    post["reactions"] = [{"type": "emoji", "emoji": "👍"}]
    (folder / "result.json").write_text(json.dumps(document, ensure_ascii=False))
    lake = Lake(tmp_path / "lake")
    summary = import_exports(lake, folder)
    (error,) = summary.failed.values()
    assert f"(id {post['id']}): missing 'count'" in error and lake.message_files() == []


def test_an_import_sweeps_what_a_killed_run_left_in_the_channel(sample, tmp_path):
    exports, _ = sample
    lake = Lake(tmp_path)
    leftover = lake.media_file("tikvahpharma", 3, "jpg").with_name(".3.jpg.tmp-0123456789ab")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a photo")
    assert import_exports(lake, exports / "tikvahpharma").messages > 0
    assert not leftover.exists()


def test_a_full_disk_during_the_photo_copies_leaves_no_temporary_file(
    sample, tmp_path, monkeypatch
):
    """Regression (fault suite, scenario 4): when the disk filled while an import copied
    its photos, the photos staged before were left as temporary files (hidden, but
    filling the full disk further) until the channel's next import swept them."""
    import os

    exports, _ = sample
    lake = Lake(tmp_path / "lake")
    real_copy = shutil.copyfileobj
    copies = {"n": 0}

    def full_after_three(source, target, *args):
        copies["n"] += 1
        if copies["n"] > 3:
            raise OSError(28, "No space left on device")
        return real_copy(source, target, *args)

    monkeypatch.setattr(shutil, "copyfileobj", full_after_three)
    with pytest.raises(OSError, match="no space left on the device holding"):
        import_exports(lake, exports / "CheMed123")
    assert [p for p in (tmp_path / "lake").rglob("*") if ".tmp-" in p.name] == []
    assert lake_records(lake) == [] and HighWaterMarks(lake, MESSAGES).get("chemed123") == 0
    assert not any(os.scandir(tmp_path / "lake" / "raw" / "telegram_media" / "channel=chemed123"))
