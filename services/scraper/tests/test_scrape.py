import asyncio
import json
import os
from datetime import timedelta

from telethon import TelegramClient
from telethon.errors import InvalidBufferError, TypeNotFoundError
from telethon.sessions import StringSession
from telethon.tl import functions, types

from tgmed_common.channel_lock import hold_channel
from tgmed_common.lake import MESSAGES, Lake, read_messages, read_observations, read_snapshots
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.errors import clean_text
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
    error = summary.failed[0].error
    assert 'no public Telegram channel is called "nosuchchannel"' in error
    assert error.startswith("channel nosuchchannel") and "No user has" not in error
    assert summary.failed[0].failure == "unavailable" and summary.outcome == "partial"
    by_channel = {c.channel: c.messages for c in summary.channels}
    assert by_channel == {"chemed123": 27, "nosuchchannel": 0, "lobelia4cosmetics": 11}


# --- what a post carries: forwards, reactions, observations; the channel's snapshot -------


def test_a_forward_keeps_the_source_id_its_name_and_the_original_post_id(client, tmp_path):
    lake = Lake(tmp_path)
    run(client, lake)
    records = {r.message_id: r for r in lake_records(lake)}
    # 11: from a channel (the name comes from the response's entities)
    assert records[11].forwarded_from == "EFDA Ethiopia"
    assert records[11].forwarded_from_id == -1000000000777  # the channel's stable id
    assert records[11].forwarded_message_id == 4011
    # 22: the header also carries a display name: both are kept, the id is not lost
    assert records[22].forwarded_from == "EFDA"
    assert records[22].forwarded_from_id == -1000000000777
    assert records[22].forwarded_message_id == 4022
    assert records[12].forwarded_from is None and records[12].forwarded_from_id is None


def test_reactions_are_counted_per_emoji(client, tmp_path):
    lake = Lake(tmp_path)
    run(client, lake)
    records = {r.message_id: r for r in lake_records(lake)}
    as_pairs = {i: [(x.kind, x.reaction, x.count) for x in r.reactions] for i, r in records.items()}
    assert as_pairs[1] == []  # no reactions: known to be none
    assert as_pairs[4] == [("emoji", "👍", 4), ("emoji", "❤", 4)]
    assert as_pairs[8] == [
        ("emoji", "👍", 8),
        ("emoji", "❤", 3),
        ("custom_emoji", "custom_emoji:5001", 2),
    ]
    assert ("paid", "paid", 3) in as_pairs[24]


def test_every_read_is_an_observation_and_every_scrape_a_channel_snapshot(client, tmp_path, tg):
    lake = Lake(tmp_path)
    first = run(client, lake, now=lambda: tg.START + timedelta(days=8)).channels[0]
    observations = [o for p in lake.observation_files() for o in read_observations(p)]
    records = {r.message_id: r for r in lake_records(lake)}
    assert first.observations == len(observations) == len(records) == 27
    for seen in observations:
        record = records[seen.message_id]
        assert (seen.views, seen.forwards, seen.replies) == (
            record.views,
            record.forwards,
            record.replies,
        )
        assert seen.reactions == record.reactions and seen.observed_at == record.scraped_at
        assert seen.message_date == record.date and seen.channel_id == 1000
    (snapshot,) = [s for p in lake.snapshot_files() for s in read_snapshots(p)]
    assert snapshot.subscribers == 1500 and snapshot.title == "chemed123 title"
    assert snapshot.description.startswith("chemed123: medicines") and snapshot.channel_id == 1000
    assert first.subscribers == 1500 and first.snapshots == 1
    # a second scrape with nothing new still records the channel as it is now
    client.subscribers["chemed123"] = 1520
    second = run(client, lake, now=lambda: tg.START + timedelta(days=9)).channels[0]
    snapshots = sorted(
        (s for p in lake.snapshot_files() for s in read_snapshots(p)), key=lambda s: s.observed_at
    )
    assert [s.subscribers for s in snapshots] == [1500, 1520] and second.messages == 0


# --- the high-water mark is defended ---------------------------------------------------------


def test_a_server_padding_min_id_pages_with_old_messages_gets_nothing_old_written(
    client, tmp_path, tg
):
    lake = Lake(tmp_path)
    run(client, lake)
    before = [r.message_id for r in lake_records(lake)]
    client.pad_old = 25  # every min_id page also carries the 25 messages before the mark
    client.channels["chemed123"] += tg.make_messages(1000, 5, start_id=31)
    summary = run(client, lake)
    result = summary.channels[0]
    after = [r.message_id for r in lake_records(lake)]
    assert sorted(after) == sorted([*before, 31, 32, 33, 34, 35])  # nothing old again
    assert result.messages == 5 and result.dropped_below_mark == 25
    assert result.read == 30 and summary.as_dict()["dropped_below_mark"] == 25
    assert result.observations == 5
    # nothing new: nothing written, everything the server sent dropped and counted
    again = run(client, lake).channels[0]
    assert again.messages == 0 and again.dropped_below_mark == 25 and again.files == 1  # snapshot
    assert len(lake_records(lake)) == len(before) + 5
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") == 35


# --- never hang ---------------------------------------------------------------------------


def test_a_server_that_stops_answering_fails_the_channel_within_the_bound(client, tmp_path, tg):
    lake = Lake(tmp_path)
    client.stall_after = 12  # answers 12 messages, then never again
    summary = run(client, lake, since=tg.START - timedelta(days=1), batch_size=5, request_timeout=1)
    result = summary.channels[0]
    assert result.failure == "transient" and summary.outcome == "transient"
    assert result.error.startswith("channel chemed123: Telegram did not answer within 1s")
    assert "SCRAPER_REQUEST_TIMEOUT_SECONDS" in result.error and "run again later" in result.error
    body = summary.as_dict()
    assert body["transient_channels"] == ["chemed123"] and "chemed123" in body["error"]
    assert no_temp_files(tmp_path) == []
    # 12 has a photo: its download is where the server went silent
    assert sorted(r.message_id for r in lake_records(lake)) == [i for i in range(1, 12) if i != 10]
    # the server answers again: the next run resumes with no gap and no duplicate
    client.stall_after = None
    assert run(client, lake, request_timeout=1).channels[0].error is None
    ids = [r.message_id for r in lake_records(lake)]
    assert sorted(ids) == [i for i in range(1, 31) if i % 10] and len(ids) == len(set(ids))


def test_a_download_that_stops_half_way_leaves_no_partial_photo(client, tmp_path, tg):
    lake = Lake(tmp_path)
    client.stall_in_download = {9}
    summary = run(client, lake, since=tg.START - timedelta(days=1), request_timeout=1)
    assert summary.channels[0].failure == "transient"
    assert "while downloading a photo" in summary.channels[0].error
    assert no_temp_files(tmp_path) == []
    assert not lake.media_file("chemed123", 9, "jpg").exists()
    assert max(r.message_id for r in lake_records(lake)) == 8
    client.stall_in_download = set()
    run(client, lake)
    assert lake.media_file("chemed123", 9, "jpg").read_bytes() == tg.JPEG
    ids = [r.message_id for r in lake_records(lake)]
    assert sorted(ids) == [i for i in range(1, 31) if i % 10] and len(ids) == len(set(ids))


def test_a_channel_that_never_ends_fails_within_the_channel_bound(client, tmp_path, tg):
    class EndlessChannel(tg.Client):
        async def iter_messages(self, entity, limit=None, min_id=0, **_):
            message_id = min_id
            while True:  # every answer comes at once, there is always one more
                message_id += 1
                await asyncio.sleep(0)
                yield tg.module.message(1000, message_id)

    endless = EndlessChannel(channels=client.channels, ids=client.ids)
    lake = Lake(tmp_path)
    HighWaterMarks(lake, MESSAGES).advance("chemed123", 1)
    summary = run(endless, lake, channel_timeout=1, download_photos=False, batch_size=50)
    result = summary.channels[0]
    assert result.failure == "transient"
    assert result.error.startswith("channel chemed123: not finished within 1s")
    assert "SCRAPER_CHANNEL_TIMEOUT_SECONDS" in result.error
    assert no_temp_files(tmp_path) == []
    ids = [r.message_id for r in lake_records(lake)]
    # what was fetched is saved, and the mark follows it
    assert ids and HighWaterMarks(lake, MESSAGES).get("chemed123") >= max(ids)


def test_a_channel_busy_in_another_process_is_a_transient_failure(client, tmp_path):
    lake = Lake(tmp_path)
    with hold_channel(lake, "chemed123"):  # another writer holds it (flock is per open file)
        summary = run(client, lake)
    result = summary.channels[0]
    assert result.failure == "transient" and "another process is writing" in result.error
    assert lake_records(lake) == []


def test_protocol_errors_reach_the_summary_in_words_not_bytes(client, tmp_path):
    class Garbled(type(client)):
        async def get_entity(self, username):
            raise TypeNotFoundError(0xDEADBEEF, b"\x00\xff\x13garbage")

    garbled = Garbled(channels=client.channels, ids=client.ids)
    summary = run(garbled, Lake(tmp_path))
    error = summary.as_dict()["failed_channels"]["chemed123"]
    assert error.startswith("channel chemed123:") and "<bytes>" in error
    assert "\\x" not in json.dumps(summary.as_dict()) and "b'" not in error
    assert (
        clean_text(str(InvalidBufferError(b"\x01\x02\x03")))
        == "Invalid response buffer (too short <bytes>)"
    )


# --- the refresh window -------------------------------------------------------------------


def test_the_refresh_window_rereads_recent_posts_and_counts_them_apart(client, tmp_path, tg):
    lake = Lake(tmp_path)
    now = tg.START + timedelta(days=8)
    run(client, lake, now=lambda: now - timedelta(hours=1), refresh_days=2)  # nothing to refresh
    downloads = len(client.downloads)
    tg.grow_counts(client.channels["chemed123"], views=1000)
    client.channels["chemed123"] += tg.make_messages(1000, 2, start_id=31)
    client.iter_calls.clear()
    result = run(client, lake, now=lambda: now, refresh_days=2).channels[0]
    # posts of the last 2 days (from START + 6 days: ids 25..30, 30 a service message)
    assert result.messages == 2 and result.refreshed == 5 and result.service_messages == 1
    assert result.read == 8 and result.observations == 7
    refresh_call = client.iter_calls[-1]
    assert refresh_call["offset_id"] == 31 and refresh_call["limit"] == 100
    newest = {}
    for record in sorted(lake_records(lake), key=lambda r: r.scraped_at):
        newest[record.message_id] = record
    for message_id in range(25, 30):
        assert newest[message_id].views == 100 + message_id + 1000
        assert newest[message_id].forwards == message_id % 4 + 10
        assert newest[message_id].replies == message_id % 5 + 3
    assert newest[24].views == 124  # outside the window: not re-read
    assert newest[27].media_path == "raw/telegram_media/channel=chemed123/27.jpg"
    assert len(client.downloads) == downloads  # no photo downloaded again
    assert HighWaterMarks(lake, MESSAGES).get("chemed123") == 32
    observed = [o for p in lake.observation_files() for o in read_observations(p)]
    assert sorted(o.views for o in observed if o.message_id == 27) == [127, 1127]


def test_the_refresh_goes_in_batches_of_ids_and_waits_out_a_flood_wait(tmp_path, tg):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    busy = tg.Client()
    busy.add_channel("busy", messages=tg.make_messages(1000, 260, every_hours=1))
    lake = Lake(tmp_path)
    now = tg.START + timedelta(hours=260)
    run(busy, lake, channels=["busy"], now=lambda: now)
    busy.iter_calls.clear()
    busy.flood_at_listing = {3: 5}  # listing 1: new messages; 2, 3: refresh batches
    result = run(busy, lake, channels=["busy"], now=lambda: now, refresh_days=30, sleep=sleep)
    result = result.channels[0]
    refresh = [c for c in busy.iter_calls if not c["reverse"]]
    assert [c["offset_id"] for c in refresh] == [261, 161, 161, 61]  # 161 again after the wait
    assert slept == [6] and result.flood_waits == 1
    assert result.refreshed == 234 and result.service_messages == 26  # every post, once


class PaddingHistoryServer(TelegramClient):
    """Telethon's own TelegramClient, with `messages.getHistory` answered in memory the
    way the server of the report did: each page also carries the `pad` messages before
    the page's first id. Nothing connects: only the request is intercepted."""

    def __init__(self, history: list, channel: types.Channel, pad: int) -> None:
        super().__init__(StringSession(), 1, "0" * 32, receive_updates=False)
        self.history, self.channel, self.pad = history, channel, pad

    async def __call__(self, request, ordered=False, flood_sleep_threshold=None):
        assert isinstance(request, functions.messages.GetHistoryRequest)
        # reverse mode asks add_offset=-limit: the `limit` messages from offset_id up
        assert request.add_offset == -request.limit
        start = request.offset_id
        page = [m for m in self.history if m.id >= start][: request.limit]
        older = [m for m in self.history if m.id < start][-self.pad :] if self.pad else []
        messages = sorted(page + older, key=lambda m: m.id, reverse=True)
        return types.messages.ChannelMessages(
            pts=1,
            count=len(self.history),
            messages=messages,
            topics=[],
            chats=[self.channel],
            users=[],
        )


def test_telethons_own_reverse_iterator_hands_out_padded_ids_and_none_gets_written(
    client, tmp_path, tg
):
    """The root of the report's bug, with Telethon's real `iter_messages`: in reverse
    mode it checks no min_id, so a padded page yields old messages; the scraper drops
    them."""
    history = tg.make_messages(1000, 35)
    entity = tg.module.channel_entity("chemed123", 1000)
    server = PaddingHistoryServer(history, entity, pad=20)

    async def handed_out(min_id):
        return [m.id async for m in server.iter_messages(entity, min_id=min_id, reverse=True)]

    assert asyncio.run(handed_out(30))[:3] == [11, 12, 13]  # old ids, as the report saw

    class ThroughTelethon(tg.Client):
        def iter_messages(self, entity, **kwargs):
            self.iter_calls.append(kwargs)
            return server.iter_messages(entity, **kwargs)

    lake = Lake(tmp_path)
    HighWaterMarks(lake, MESSAGES).advance("chemed123", 30)
    through = ThroughTelethon(channels={"chemed123": history}, ids={"chemed123": 1000})
    result = run(through, lake).channels[0]
    assert lake_ids_sorted(lake) == [31, 32, 33, 34, 35]
    assert result.messages == 5 and result.dropped_below_mark == 20


def lake_ids_sorted(lake):
    return sorted(r.message_id for r in lake_records(lake))
