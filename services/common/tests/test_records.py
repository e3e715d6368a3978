from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tgmed_common.records import (
    MESSAGE_SCHEMA_VERSION,
    ChannelSnapshotRecord,
    DetectionRecord,
    MessageObservationRecord,
    MessageRecord,
    canonical_channel,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def message(**overrides):
    fields = dict(
        source="export", channel_username="CheMed123", message_id=7, date=NOW, scraped_at=NOW
    )
    fields.update(overrides)
    return MessageRecord(**fields)


def test_channel_names_are_canonical_lower_case():
    assert canonical_channel("@CheMed123") == "chemed123"
    assert message().channel_username == "chemed123"
    with pytest.raises(ValueError, match="not a channel username"):
        canonical_channel("../etc")


def test_dates_are_stored_in_utc():
    eat = timezone(timedelta(hours=3))
    record = message(date=datetime(2026, 11, 1, 15, 0, tzinfo=eat))
    assert record.date == NOW and record.date.tzinfo == UTC
    assert '"date":"2026-11-01T12:00:00Z"' in record.model_dump_json()


def test_naive_dates_are_refused():
    with pytest.raises(ValidationError, match="timezone"):
        message(date=datetime(2026, 11, 1, 12, 0))


def test_unknown_schema_version_is_refused_with_advice():
    raw = message().model_dump_json().replace('"schema_version":2', '"schema_version":3')
    with pytest.raises(ValidationError, match="schema_version 3 is not supported"):
        MessageRecord.model_validate_json(raw)


def test_version_1_message_records_are_still_read():
    """Files written before reactions and forward ids existed stay loadable."""
    current = message(forwarded_from="EFDA").model_dump(mode="json")
    for name in ("forwarded_from_id", "forwarded_message_id", "reactions"):
        del current[name]
    old = MessageRecord.model_validate({**current, "schema_version": 1})
    assert old.schema_version == 1 and old.reactions is None and old.forwarded_from == "EFDA"
    assert message().schema_version == MESSAGE_SCHEMA_VERSION == 2


def test_reactions_observations_and_snapshots_are_strict_records():
    record = message(
        reactions=[{"kind": "emoji", "reaction": "👍", "count": 3}],
        forwarded_from_id=-1000000000777,
        forwarded_message_id=42,
    )
    assert MessageRecord.model_validate_json(record.model_dump_json()) == record
    with pytest.raises(ValidationError):
        message(reactions=[{"kind": "emoji", "reaction": "👍", "count": -1}])
    with pytest.raises(ValidationError):
        message(reactions=[{"kind": "sticker", "reaction": "x", "count": 1}])
    seen = MessageObservationRecord(
        channel_username="CheMed123", message_id=7, message_date=NOW, views=10, observed_at=NOW
    )
    assert seen.channel_username == "chemed123" and seen.schema_version == 1
    with pytest.raises(ValidationError, match="Extra inputs"):
        MessageObservationRecord.model_validate({**seen.model_dump(), "text": "x"})
    snapshot = ChannelSnapshotRecord(
        channel_username="chemed123", subscribers=1500, observed_at=NOW
    )
    assert ChannelSnapshotRecord.model_validate_json(snapshot.model_dump_json()) == snapshot
    with pytest.raises(ValidationError):
        ChannelSnapshotRecord(channel_username="chemed123", subscribers=-5, observed_at=NOW)


def test_round_trip_and_unknown_fields_refused():
    record = message(
        text="ዋጋ 1,200 ብር",
        views=10,
        media_type="photo",
        media_path="raw/telegram_media/channel=chemed123/7.jpg",
    )
    assert MessageRecord.model_validate_json(record.model_dump_json()) == record
    with pytest.raises(ValidationError, match="Extra inputs"):
        MessageRecord.model_validate({**record.model_dump(), "colour": "red"})


def test_negative_counts_and_ids_refused():
    with pytest.raises(ValidationError):
        message(views=-1)
    with pytest.raises(ValidationError):
        message(message_id=0)


def test_detection_confidence_bounded():
    fields = dict(
        channel_username="x1",
        message_id=1,
        media_path="p.jpg",
        model_name="m",
        model_hash="h",
        detected_at=NOW,
    )
    ok = DetectionRecord(
        **fields,
        detections=[
            {"class_id": 0, "class_name": "person", "confidence": 0.9, "box": (1, 2, 3, 4)}
        ],
    )
    assert ok.detections[0].class_name == "person"
    with pytest.raises(ValidationError):
        DetectionRecord(
            **fields,
            detections=[
                {"class_id": 0, "class_name": "person", "confidence": 1.5, "box": (1, 2, 3, 4)}
            ],
        )


def test_detection_records_of_version_1_still_read_and_version_2_says_where_it_came_from():
    fields = dict(
        channel_username="x1",
        message_id=1,
        media_path="raw/telegram_media/channel=x1/1.jpg",
        model_name="m",
        model_hash="h",
        detected_at=NOW,
    )
    old = '{"schema_version":1,' + DetectionRecord(**fields).model_dump_json(
        exclude={"schema_version", "content_hash", "reused_from"}
    ).removeprefix("{")
    assert DetectionRecord.model_validate_json(old).content_hash is None
    repost = DetectionRecord(
        **{**fields, "channel_username": "y2", "media_path": "raw/telegram_media/channel=y2/9.jpg"},
        content_hash="ab" * 32,
        reused_from=fields["media_path"],
    )
    assert repost.schema_version == 2
    assert DetectionRecord.model_validate_json(repost.model_dump_json()) == repost
    with pytest.raises(ValidationError, match="schema_version 3 is not supported"):
        DetectionRecord.model_validate_json(repost.model_dump_json().replace(":2,", ":3,", 1))
    with pytest.raises(ValidationError, match="content_hash"):
        DetectionRecord(**fields, content_hash="not-a-sha256")
