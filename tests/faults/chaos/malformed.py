"""Broken input at volume, of every kind the stages' own tests know, beside good input:
Telegram Desktop exports (the importer's kinds) and lake files of both record streams
(the loader's kinds). Each broken item says where the damage is (file and line, or
message index), so the suite can check that the note beside it in quarantine says so."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tgmed_common.lake import Lake
from tgmed_common.records import DetectionRecord, MessageRecord


@dataclass(frozen=True)
class Broken:
    path: Path  # the file as placed (an export's result.json, or a lake file)
    kind: str
    line: int | None  # the damaged line (lake files) or message index (exports); None: whole file
    stream: str  # exports, telegram_messages, yolo_detections


def _message(channel: str, message_id: int) -> MessageRecord:
    when = datetime(2026, 9, 1, 8, tzinfo=UTC) + timedelta(hours=message_id)
    return MessageRecord(
        source="telethon",
        channel_username=channel,
        channel_title=channel,
        message_id=message_id,
        date=when,
        text=f"Paracetamol 500mg price {message_id} birr",
        views=10 + message_id,
        scraped_at=when + timedelta(days=1),
    )


def _detection(channel: str, message_id: int) -> DetectionRecord:
    return DetectionRecord(
        channel_username=channel,
        message_id=message_id,
        media_path=f"raw/telegram_media/channel={channel}/{message_id}.jpg",
        model_name="chaos.onnx",
        model_hash="chaos-model",
        image_width=640,
        image_height=480,
        detections=[
            {"class_id": 39, "class_name": "bottle", "confidence": 0.9, "box": (1, 2, 30, 40)}
        ],
        detected_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def _line(record: MessageRecord | DetectionRecord) -> bytes:
    return record.model_dump_json().encode() + b"\n"


def _mutated(record: MessageRecord | DetectionRecord, **changes: object) -> bytes:
    body = {**json.loads(record.model_dump_json()), **changes}
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


def _without(record: MessageRecord | DetectionRecord, field: str) -> bytes:
    body = {k: v for k, v in json.loads(record.model_dump_json()).items() if k != field}
    return json.dumps(body).encode() + b"\n"


MESSAGE_DAMAGE = {
    "bad json": lambda r: b"{" + _line(r)[:30] + b"\n",
    "id not a number": lambda r: _mutated(r, message_id="seven"),
    "views not a number": lambda r: _mutated(r, views="many"),
    "date not a date": lambda r: _mutated(r, date="yesterday"),
    "naive date": lambda r: _mutated(r, date="2026-10-01T10:00:00"),
    "text not a string": lambda r: _mutated(r, text=5),
    "unknown media type": lambda r: _mutated(r, media_type="hologram"),
    "schema version 9": lambda r: _mutated(r, schema_version=9),
    "negative views": lambda r: _mutated(r, views=-4),
    "bad channel": lambda r: _mutated(r, channel_username="../etc"),
    "unknown field": lambda r: _mutated(r, colour="red"),
    "array": lambda r: b"[1, 2, 3]\n",
    "blank line": lambda r: b"\n",
    "id zero": lambda r: _mutated(r, message_id=0),
    "no date": lambda r: _without(r, "date"),
    "no channel": lambda r: _without(r, "channel_username"),
    "not utf-8": lambda r: _line(r).replace(b"birr", b"\xff\xfe"),
}
DETECTION_DAMAGE = {
    "bad json": lambda r: b"{" + _line(r)[:30] + b"\n",
    "id not a number": lambda r: _mutated(r, message_id="seven"),
    "detections not a list": lambda r: _mutated(r, detections="bottle"),
    "confidence above 1": lambda r: _mutated(
        r, detections=[{"class_id": 1, "class_name": "x", "confidence": 7, "box": [0, 0, 1, 1]}]
    ),
    "box of three": lambda r: _mutated(
        r, detections=[{"class_id": 1, "class_name": "x", "confidence": 0.5, "box": [0, 0, 1]}]
    ),
    "unknown status": lambda r: _mutated(r, status="maybe"),
    "schema version 9": lambda r: _mutated(r, schema_version=9),
    "no model hash": lambda r: _without(r, "model_hash"),
    "naive detected_at": lambda r: _mutated(r, detected_at="2026-11-01T00:00:00"),
    "not utf-8": lambda r: _line(r).replace(b"bottle", b"\xff\xfe"),
}


def _lake_files(
    lake: Lake, stream: str, count: int, first_channel: int
) -> tuple[list[Broken], list[Path]]:
    """`count` broken files of a stream (each kind, on each of five lines, cycled), and as
    many good files beside them."""
    damage = MESSAGE_DAMAGE if stream == "telegram_messages" else DETECTION_DAMAGE
    make = _message if stream == "telegram_messages" else _detection
    path_of = lake.message_file if stream == "telegram_messages" else lake.detection_file
    kinds = list(damage)
    broken, good = [], []
    for n in range(count):
        channel = f"chaos{first_channel + n // 50}"
        base = 1 + 5 * n
        records = [make(channel, base + i) for i in range(5)]
        kind, at = kinds[n % len(kinds)], 1 + (n // len(kinds)) % 5
        body = [_line(r) for r in records]
        body[at - 1] = damage[kind](records[at - 1])
        day = records[0].date.date() if stream == "telegram_messages" else datetime.now(UTC).date()
        path = path_of(day, channel, f"chaos-bad-{n:04d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(body))
        broken.append(Broken(path, kind, at, stream))
        # good files: detections of the good messages (same channels and ids)
        good_records = [make(f"good{n // 50}", base + i) for i in range(5)]
        good_path = path_of(day, good_records[0].channel_username, f"chaos-good-{n:04d}")
        good_path.parent.mkdir(parents=True, exist_ok=True)
        good_path.write_bytes(b"".join(_line(r) for r in good_records))
        good.append(good_path)
    # whole-file damage: nothing to read
    for name, body in [("empty", b""), ("blank lines", b"\n\n\n")]:
        path = path_of(datetime.now(UTC).date(), f"chaos{first_channel}", f"chaos-{name[:5]}-0")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        broken.append(Broken(path, name, None, stream))
    return broken, good


EXPORT_DAMAGE = {
    "bad json": None,
    "no id": "id",
    "no date": "date",
    "id not a number": "id-text",
    "text not a string": "text",
    "no type": "type",
    "messages not a list": "messages",
    "missing photo": "photo",
    "not an object": "object",
    "not utf-8": "utf8",
}


def broken_exports(good_export: Path, root: Path, count: int) -> list[Broken]:
    """`count` broken copies of a good export (its result.json damaged, each kind in
    turn), each in its own channel folder under `root`."""
    document = json.loads((good_export / "result.json").read_text(encoding="utf-8"))
    messages = document["messages"]
    photo_index = next(i for i, m in enumerate(messages) if m.get("photo"))
    kinds = list(EXPORT_DAMAGE)
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        folder = root / f"broken{n:03d}"
        folder.mkdir(parents=True)
        body = json.loads(json.dumps(document))
        index: int | None = min(3 + n // len(kinds), len(messages) - 1)
        raw: bytes | None = None
        match kind:
            case "bad json":
                raw = json.dumps(body).encode()[:-40]
                index = None
            case "no id":
                del body["messages"][index]["id"]
            case "no date":
                body["messages"][index].pop("date", None)
                body["messages"][index].pop("date_unixtime", None)
            case "id not a number":
                body["messages"][index]["id"] = "seven"
            case "text not a string":
                body["messages"][index]["text"] = 5
            case "no type":
                del body["messages"][index]["type"]
            case "messages not a list":
                body["messages"] = {"oops": True}
                index = None
            case "missing photo":
                index = photo_index  # the photo file is not copied beside it
            case "not an object":
                body["messages"][index] = "hello"
            case "not utf-8":
                raw = json.dumps(body, ensure_ascii=False).encode().replace(b"Para", b"\xff\xfe", 1)
                index = None
        target = folder / "result.json"
        target.write_bytes(
            raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        )
        out.append(Broken(target, kind, index, "exports"))
    return out


def lake_files(lake: Lake, count: int) -> tuple[list[Broken], list[Path]]:
    """`count` broken lake files (half messages, half detections) and good ones beside."""
    half = count // 2
    broken_messages, good_messages = _lake_files(lake, "telegram_messages", half - 2, 0)
    broken_detections, good_detections = _lake_files(
        lake, "yolo_detections", count - half - 2, 1000
    )
    return broken_messages + broken_detections, good_messages + good_detections
