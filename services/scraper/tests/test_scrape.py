import asyncio
import os
from datetime import timedelta
from pathlib import Path

from tgmed_common.lake import MESSAGES, Lake, read_messages
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.scrape import ScrapeOptions, scrape_channels


def lake_records(lake):
    return [r for path in lake.message_files() for r in read_messages(path)]


def no_temp_files(root):
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


def run(client, lake, channels=("chemed123",), **options):
    return asyncio.run(scrape_channels(client, lake, list(channels), ScrapeOptions(**options)))


def test_records_and_photos_land_in_the_lake(client, tmp_path, tg):
    lake = Lake(tmp_path)
    summary = run(client, lake)
    result = summary.channels[0]
    assert result.error is None
    records = {r.message_id: r for r in lake_records(lake)}
    # 30 messages, 3 of them service messages (10, 20, 30)
    assert sorted(records) == [i for i in range(1, 31) if i % 10]
    assert result.messages == 27 and result.service_messages == 3
    photos = {i for i in records if i % 3 == 0}
    assert result.photos == len(photos) == 9
    for message_id, record in records.items():
        assert record.source == "telethon" and record.channel_username == "chemed123"
        assert record.channel_title == "chemed123 title" and record.channel_id == 1000
        assert record.views == 100 + message_id and record.replies == message_id % 5
        assert record.forwards == message_id % 4
        assert record.date == tg.START + timedelta(hours=6 * (message_id - 1))
        assert f"ዋጋ {message_id * 10} ብር" in record.text
        if message_id in photos:
            assert record.media_type == "photo"
            assert lake.resolve(record.media_path).read_bytes() == tg.JPEG
        else:
            assert record.media_type is None and record.media_path is None
    assert records[3].grouped_id == records[6].grouped_id == 5555
    assert records[11].forwarded_from == "EFDA"
    assert records[13].reply_to_message_id == 12
    assert records[7].edit_date is not None
    # messages are partitioned by their day: 4 posts a day over 7.5 days
    assert len({p.parent.parent.name for p in lake.message_files()}) == 8
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") == 30
    assert summary.as_dict()["high_water_marks"] == {"chemed123": 30}


def test_second_run_continues_after_the_mark_and_writes_only_newer(client, tmp_path, tg):
    lake = Lake(tmp_path)
    run(client, lake)
    before = len(lake_records(lake))
    client.channels["chemed123"] += tg.make_messages(1000, 5, start_id=31)
    client.iter_calls.clear()
    summary = run(client, lake)
    assert client.iter_calls[0]["min_id"] == 30 and client.iter_calls[0]["reverse"] is True
    assert summary.channels[0].messages == 5
    ids = [r.message_id for r in lake_records(lake)]
    assert len(ids) == before + 5 == len(set(ids))
    # nothing new: nothing written
    assert run(client, lake).channels[0].messages == 0
    assert len(lake_records(lake)) == before + 5


def test_first_run_takes_the_newest_limit_or_everything_since(client, tmp_path, tg):
    lake = Lake(tmp_path / "a")
    run(client, lake, limit=5)
    assert sorted(r.message_id for r in lake_records(lake)) == [26, 27, 28, 29]  # 30: service
    lake = Lake(tmp_path / "b")
    run(client, lake, since=tg.START + timedelta(days=5))
    assert min(r.message_id for r in lake_records(lake)) == 21


def test_short_flood_wait_is_waited_out(client, tmp_path):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    client.flood_waits = [7]
    summary = run(client, Lake(tmp_path), sleep=sleep, flood_wait_max_seconds=60)
    assert slept == [8]
    assert summary.channels[0].error is None and summary.channels[0].messages == 27
    assert summary.as_dict()["flood_waits"] == 1


def test_long_flood_wait_fails_with_a_clear_message(client, tmp_path):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    client.flood_waits = [3600]
    lake = Lake(tmp_path)
    summary = run(client, lake, sleep=sleep, flood_wait_max_seconds=60)
    error = summary.failed[0].error
    assert "3600s" in error and "SCRAPER_FLOOD_WAIT_MAX_SECONDS=60" in error
    assert "chemed123" in error and slept == []
    assert lake_records(lake) == [] and HighWaterMarks(lake, MESSAGES).get("chemed123") == 0


def test_crash_mid_scrape_keeps_what_was_written_and_no_more(client, tmp_path, tg):
    lake = Lake(tmp_path)
    client.fail_after = 12
    since = tg.START - timedelta(days=1)
    summary = run(client, lake, since=since, batch_size=5)
    assert "connection to Telegram lost" in summary.failed[0].error
    assert no_temp_files(tmp_path) == []
    written = sorted(r.message_id for r in lake_records(lake))
    assert written == [i for i in range(1, 13) if i != 10]
    mark = HighWaterMarks(lake, MESSAGES).get("chemed123")
    assert mark == 12
    # the re-run picks up exactly where it stopped
    client.fail_after = None
    run(client, lake)
    ids = [r.message_id for r in lake_records(lake)]
    assert sorted(ids) == [i for i in range(1, 31) if i % 10] and len(ids) == len(set(ids))


def test_failed_lake_write_leaves_no_half_file_and_does_not_move_the_mark(
    client, tmp_path, monkeypatch, tg
):
    lake = Lake(tmp_path)
    real_link = os.link
    calls = {"n": 0}

    def flaky_link(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 3:
            raise OSError(28, "No space left on device")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", flaky_link)
    summary = run(client, lake, since=tg.START - timedelta(days=1), batch_size=8)
    assert "No space left on device" in summary.failed[0].error
    assert no_temp_files(tmp_path) == []
    records = lake_records(lake)  # every file that exists is whole
    mark = HighWaterMarks(lake, MESSAGES).get("chemed123")
    assert mark <= max((r.message_id for r in records), default=0)
    assert all(r.message_id <= 8 for r in records)  # only the first batch's files
    monkeypatch.setattr(os, "link", real_link)
    run(client, lake)
    assert {r.message_id for r in lake_records(lake)} == {i for i in range(1, 31) if i % 10}


def test_expired_file_reference_is_refreshed_and_retried(client, tmp_path, tg):
    client.expired_references = {3, 6}
    lake = Lake(tmp_path)
    result = run(client, lake).channels[0]
    assert result.photo_errors == 0 and result.photos == 9
    assert lake.media_file("chemed123", 3, "jpg").read_bytes() == tg.JPEG


def test_a_retried_download_does_not_keep_the_partial_bytes(client, tmp_path, tg):
    async def sleep(seconds):
        pass

    client.partial_then_flood = {9}
    lake = Lake(tmp_path)
    result = run(client, lake, sleep=sleep).channels[0]
    assert result.flood_waits == 1 and result.photo_errors == 0
    assert lake.media_file("chemed123", 9, "jpg").read_bytes() == tg.JPEG


def test_photos_are_downloaded_once(client, tmp_path):
    lake = Lake(tmp_path)
    run(client, lake)
    downloads = len(client.downloads)
    lake.state_file(MESSAGES, "chemed123").unlink()  # forget the mark: scan again
    result = run(client, lake).channels[0]
    assert len(client.downloads) == downloads and result.photos_skipped == 9


def test_channels_run_concurrently_and_a_failing_one_does_not_stop_the_rest(client, tmp_path):
    client.add_channel("lobelia4cosmetics", count=12)
    lake = Lake(tmp_path)
    summary = run(
        client, lake, channels=["CheMed123", "nosuchchannel", "lobelia4cosmetics"], concurrency=2
    )
    assert [c.channel for c in summary.failed] == ["nosuchchannel"]
    assert 'No user has "nosuchchannel"' in summary.failed[0].error
    by_channel = {c.channel: c.messages for c in summary.channels}
    assert by_channel == {"chemed123": 27, "nosuchchannel": 0, "lobelia4cosmetics": 11}


def test_a_full_disk_while_downloading_a_photo_fails_the_channel_and_loses_no_photo(
    client, tmp_path, monkeypatch, tg
):
    """Regression (fault suite, disk full): the photo download's ENOSPC was counted as a
    photo error, the message kept without its photo and the mark moved past it, so the
    photo was never fetched again."""
    lake = Lake(tmp_path)
    real_download = client.download_media

    async def full_at_six(message, file):
        if message.id == 6:
            file.write(tg.JPEG[:100])
            raise OSError(28, "No space left on device")
        return await real_download(message, file)

    monkeypatch.setattr(client, "download_media", full_at_six)
    summary = run(client, lake, since=tg.START - timedelta(days=1))
    error = summary.failed[0].error
    assert "no space left on the device holding" in error and "free space there" in error
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") < 6
    assert no_temp_files(tmp_path) == []
    monkeypatch.setattr(client, "download_media", real_download)
    run(client, lake)
    records = lake_records(lake)
    assert sorted(r.message_id for r in records) == [i for i in range(1, 31) if i % 10]
    with_photo = [r for r in records if r.message_id % 3 == 0]
    assert all(r.media_path and (tmp_path / r.media_path).is_file() for r in with_photo)


def test_a_mark_that_cannot_be_written_publishes_nothing_so_the_rerun_duplicates_nothing(
    client, tmp_path, monkeypatch, tg
):
    """Regression (fault suite, disk full): the batch was published before the mark was
    written; when the mark could not be written (a full disk), the next run fetched the
    published messages again and the lake held them twice."""
    lake = Lake(tmp_path)
    real_open = Path.open

    def no_room_for_marks(self, mode="r", *args, **kwargs):
        if "state" in self.parts and "x" in mode:
            raise OSError(28, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_room_for_marks)
    summary = run(client, lake, since=tg.START - timedelta(days=1))
    assert "no space left" in summary.failed[0].error
    assert lake_records(lake) == [] and no_temp_files(tmp_path) == []
    monkeypatch.setattr(Path, "open", real_open)
    run(client, lake)
    ids = [r.message_id for r in lake_records(lake)]
    assert sorted(ids) == [i for i in range(1, 31) if i % 10]  # each once
