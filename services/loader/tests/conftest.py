from datetime import UTC, date, datetime, timedelta

import pytest

from tgmed_common.lake import Lake
from tgmed_common.records import MessageRecord

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def message(
    channel: str,
    message_id: int,
    *,
    views: int = 10,
    scraped: datetime = T0,
    text: str = "Paracetamol Price 60 birr",
) -> MessageRecord:
    return MessageRecord(
        source="telethon",
        channel_username=channel,
        message_id=message_id,
        date=T0 + timedelta(hours=message_id),
        text=text,
        views=views,
        forwards=1,
        replies=0,
        scraped_at=scraped,
    )


def write_file(lake: Lake, name: str, records: list, day: date = date(2026, 10, 1)):
    channel = records[0].channel_username if records else "chemed123"
    path = lake.message_file(day, channel, name)
    lake.write_records(path, records)
    return path


@pytest.fixture
def db_url(fresh_database):
    return fresh_database("loader")


@pytest.fixture
def lake(tmp_path):
    return Lake(tmp_path / "lake")


@pytest.fixture
def helpers():
    from types import SimpleNamespace

    return SimpleNamespace(message=message, write_file=write_file, T0=T0)
