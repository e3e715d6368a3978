"""The Telethon path end to end: the scraper CLI (the fake Telegram behind it, real
Telethon TL objects) -> lake -> loader -> dbt, twice, the second time after the posts'
counts grew. The refresh window updates fct_messages (newest scrape wins, one row per
post) and adds a second observation per re-read post; channel snapshots and reactions
reach their marts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import types

from tgmed_common.lake import Lake, read_messages, read_observations
from tgmed_sample.fake_telegram import FakeTelegramClient, grow_counts, make_messages
from tgmed_scraper import cli

REFRESH_DAYS = 3
HOURS_APART = 6  # the fake posts every 6 hours


def session_string() -> str:
    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    return session.save()


def posted_recently(channel_id: int, count: int, now: datetime, start_id: int = 1) -> list:
    """The fake's posts, re-dated so the newest was posted an hour ago."""
    messages = make_messages(channel_id, count, start_id=start_id)
    newest = start_id + count - 1
    for message in messages:
        message.date = now - timedelta(hours=1 + HOURS_APART * (newest - message.id))
    return messages


def query(url: str, sql: str, params=()) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def scraped(fresh_database, tmp_path_factory, run_cli):
    """Two scrape -> load -> build rounds; the stages' summaries of each."""
    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    root = tmp_path_factory.mktemp("scrape-to-marts")
    lake = Lake(root / "lake")
    url = fresh_database("scraped")
    now = datetime.now(UTC)
    fake = FakeTelegramClient()
    before = now - timedelta(hours=12)
    fake.add_channel("CheMed123", messages=posted_recently(1000, 30, before), subscribers=1500)
    fake.add_channel("lobelia4cosmetics", messages=posted_recently(1001, 12, before))

    def round_trip() -> dict:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            for name, value in {
                "LAKE_DIR": str(lake.root),
                "DATABASE_URL": url,
                "DBT_TARGET_PATH": str(root / "dbt-target"),
                "DBT_LOG_PATH": str(root / "dbt-target" / "logs"),
                "TELEGRAM_API_ID": "123456",
                "TELEGRAM_API_HASH": "0123456789abcdef0123456789abcdef",
                "TELEGRAM_SESSION": session_string(),
            }.items():
                patch.setenv(name, value)
            patch.setattr(cli, "create_client", lambda settings, **_: fake)
            scrape = ["scrape", "--channel", "CheMed123", "--channel", "lobelia4cosmetics"]
            return {
                "scrape": run_cli(cli.main, [*scrape, "--refresh-days", str(REFRESH_DAYS)]),
                "init": run_cli(loader, ["init-db"]),
                "load": run_cli(loader, ["load", "telegram"]),
                "build": run_cli(transform, ["build"]),
            }

    first = round_trip()
    # two days later: the posts' counts grew, a reaction was added, subscribers grew,
    # two new posts
    chemed = fake.channels["chemed123"]
    grow_counts(chemed, views=1000, forwards=10, replies=3)
    fake.message("chemed123", 28).reactions = types.MessageReactions(
        results=[types.ReactionCount(reaction=types.ReactionEmoji(emoticon="🔥"), count=12)]
    )
    fake.subscribers["chemed123"] = 1620
    chemed += posted_recently(1000, 2, now, start_id=31)
    second = round_trip()
    return {"first": first, "second": second, "url": url, "lake": lake, "fake": fake}


def in_window(fake: FakeTelegramClient, channel: str, upto_id: int, now: datetime) -> list:
    cutoff = now - timedelta(days=REFRESH_DAYS)
    return [m for m in fake.channels[channel] if m.id <= upto_id and m.date >= cutoff]


def test_every_stage_succeeds_both_times_and_dbt_passes_every_test(scraped):
    for round_ in ("first", "second"):
        summaries = scraped[round_]
        assert all(s["exit_code"] == 0 for s in summaries.values()), summaries
        counts = summaries["build"]["counts"]
        assert not any(k.endswith(("_fail", "_error", "_warn")) for k in counts), counts


def test_the_summary_counts_new_and_refreshed_messages_apart(scraped):
    first, second = scraped["first"]["scrape"], scraped["second"]["scrape"]
    assert first["messages"] == 27 + 11 and first["refreshed"] == 0
    assert first["read"] == first["messages"] + first["service_messages"] == 42
    assert second["messages"] == 2
    # every post of the last 3 days at or below the mark (30), service messages apart
    window = in_window(scraped["fake"], "chemed123", 30, datetime.now(UTC))
    window += in_window(scraped["fake"], "lobelia4cosmetics", 12, datetime.now(UTC))
    posts = [m for m in window if isinstance(m, types.Message)]
    assert second["refreshed"] == len(posts) > 10
    assert second["service_messages"] == len(window) - len(posts)
    assert second["observations"] == second["messages"] + second["refreshed"]
    assert second["by_channel"]["chemed123"]["messages"] == 2
    assert second["subscribers"] == {"chemed123": 1620, "lobelia4cosmetics": 1500}


def test_a_refresh_updates_the_counts_in_the_lake_and_in_fct_messages(scraped):
    url = scraped["url"]
    rows = {
        message_id: tuple(counts)
        for message_id, *counts in query(
            url,
            "select message_id, view_count, forward_count, reply_count "
            "from marts.fct_messages where channel_key = 'chemed123'",
        )
    }
    window = {m.id for m in in_window(scraped["fake"], "chemed123", 30, datetime.now(UTC))}
    for message in scraped["fake"].channels["chemed123"]:
        if not isinstance(message, types.Message) or message.id > 30:
            continue
        original = (100 + message.id, message.id % 4, message.id % 5)
        grown = (original[0] + 1000, original[1] + 10, original[2] + 3)
        assert rows[message.id] == (grown if message.id in window else original), message.id
    # the lake holds both scrapes of a refreshed post; the warehouse one row
    lake = scraped["lake"]
    views_of_29 = sorted(
        r.views
        for p in lake.message_files()
        for r in read_messages(p)
        if r.message_id == 29 and r.channel_username == "chemed123"
    )
    assert views_of_29 == [129, 1129]
    assert query(url, "select count(*), count(distinct message_key) from marts.fct_messages") == [
        (27 + 11 + 2, 27 + 11 + 2)
    ]


def test_two_scrapes_of_a_post_are_two_observations_and_one_message_row(scraped):
    url = scraped["url"]
    readings = query(
        url,
        "select view_count, reaction_count, subscriber_count, hours_since_post "
        "from marts.fct_message_observations where message_key = 'chemed123:28' "
        "order by observed_at",
    )
    assert [(v, r, s) for v, r, s, _ in readings] == [(128, 28 + 3, 1500), (1128, 12, 1620)]
    assert 0 < readings[0][3] <= readings[1][3]  # hours since the post, at each reading
    assert query(
        url, "select count(*) from marts.fct_messages where message_key = 'chemed123:28'"
    ) == [(1,)]
    lake_readings = [
        o
        for p in scraped["lake"].observation_files()
        for o in read_observations(p)
        if o.channel_username == "chemed123" and o.message_id == 28
    ]
    assert len(lake_readings) == 2
    # a post outside the refresh window was read once
    assert query(
        url, "select count(*) from marts.fct_message_observations where message_key = 'chemed123:1'"
    ) == [(1,)]
    views_per_subscriber = query(
        url,
        "select views_per_subscriber from marts.fct_message_observations "
        "where message_key = 'chemed123:28' order by observed_at",
    )
    assert [round(v, 4) for (v,) in views_per_subscriber] == [
        round(128 / 1500, 4),
        round(1128 / 1620, 4),
    ]


def test_channel_snapshots_reach_their_mart(scraped):
    rows = query(
        scraped["url"],
        "select channel_key, subscriber_count, previous_subscriber_count, subscriber_change, "
        "is_latest, channel_title, channel_description is not null "
        "from marts.fct_channel_snapshots order by channel_key, observed_at",
    )
    assert rows == [
        ("chemed123", 1500, None, None, False, "chemed123 title", True),
        ("chemed123", 1620, 1500, 120, True, "chemed123 title", True),
        ("lobelia4cosmetics", 1500, None, None, False, "lobelia4cosmetics title", True),
        ("lobelia4cosmetics", 1500, 1500, 0, True, "lobelia4cosmetics title", True),
    ]


def test_reactions_reach_their_mart_and_follow_the_newest_scrape(scraped):
    url = scraped["url"]
    assert query(
        url,
        "select reaction_kind, reaction, reaction_count from marts.fct_message_reactions "
        "where message_key = 'chemed123:28' order by reaction",
    ) == [("emoji", "🔥", 12)]  # re-read: 👍 and ❤ replaced by what the post has now
    assert query(
        url,
        "select reaction_kind, reaction, reaction_count from marts.fct_message_reactions "
        "where message_key = 'chemed123:8' order by reaction_kind, reaction",
    ) == [
        ("custom_emoji", "custom_emoji:5001", 2),
        ("emoji", "❤", 3),
        ("emoji", "👍", 8),
    ]
    totals = query(
        url,
        "select f.reaction_count, (select sum(reaction_count) from marts.fct_message_reactions r "
        "where r.message_key = f.message_key) from marts.fct_messages f "
        "where f.reaction_count > 0",
    )
    assert totals and all(total == summed for total, summed in totals)


def test_forwards_keep_source_id_and_original_post_in_fct_messages(scraped):
    assert query(
        scraped["url"],
        "select forwarded_from, forwarded_from_id, forwarded_message_id, is_forward "
        "from marts.fct_messages where message_key in ('chemed123:11', 'chemed123:22') "
        "order by message_id",
    ) == [
        ("EFDA Ethiopia", -1000000000777, 4011, True),
        ("EFDA", -1000000000777, 4022, True),
    ]
