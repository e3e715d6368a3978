"""Engagement report marts from real scrapes: four daily scrapes of two channels through
the scraper and the fake Telegram (real Telethon objects, the scraper's clock set to each
scrape), loaded and built in two rounds (the second incremental). Each mart is compared
with the scenario's truth (what every scrape read), computed in Python, and the
incremental ones with a recomputation from the facts."""

from __future__ import annotations

import psycopg
import pytest

RECOMPUTED = {
    "rpt_channel_engagement_daily": (
        "select channel_key, date_key, post_count, posts_with_views, view_count,"
        " posts_with_reactions, reaction_count, posts_with_subscribers,"
        " round(views_per_subscriber_sum::numeric, 6)"
        " from marts.rpt_channel_engagement_daily",
        "select m.channel_key, m.date_key, count(*), count(m.view_count), sum(m.view_count),"
        " count(m.reaction_count), sum(m.reaction_count), count(o.views_per_subscriber),"
        " round(sum(o.views_per_subscriber)::numeric, 6)"
        " from marts.fct_messages m left join lateral (select views_per_subscriber"
        "   from marts.fct_message_observations o where o.message_key = m.message_key"
        "   order by observed_at desc limit 1) o on true group by 1, 2",
    ),
    "rpt_channel_reactions_daily": (
        "select channel_key, date_key, reaction, reaction_count, post_count"
        " from marts.rpt_channel_reactions_daily",
        "select channel_key, date_key, reaction, sum(reaction_count), count(*)"
        " from marts.fct_message_reactions group by 1, 2, 3",
    ),
    "rpt_view_growth_daily": (
        "select channel_key, date_key, sum(reading_count), sum(view_count_sum)"
        " from marts.rpt_view_growth_daily group by 1, 2",
        "select channel_key, posted_date_key, count(*), sum(view_count)"
        " from marts.fct_message_observations group by 1, 2",
    ),
}


def query(url: str, sql: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_both_rounds_build_and_pass_every_test(scraped_warehouse):
    builds = [s["build"] for s in scraped_warehouse["summaries"] if "build" in s]
    assert len(builds) == 2
    for build in builds:
        assert build["success"], build["failures"]
        assert not any(k.endswith(("_fail", "_error")) for k in build["counts"]), build
    scenario = scraped_warehouse["scenario"]
    assert query(
        scraped_warehouse["url"], "select count(*) from marts.fct_message_observations"
    ) == [(len(scenario.readings),)]


def test_subscribers_per_day_are_the_days_last_snapshot(scraped_warehouse):
    scenario = scraped_warehouse["scenario"]
    rows = query(
        scraped_warehouse["url"],
        "select channel_key, date_key, subscriber_count, snapshot_count"
        " from marts.rpt_channel_subscribers_daily",
    )
    assert {(c, d): n for c, d, n, _ in rows} == scenario.expected_subscribers("day")
    assert sum(n for *_, n in rows) == len(scenario.snapshots)


def test_engagement_per_posting_day_matches_the_newest_readings(scraped_warehouse):
    scenario = scraped_warehouse["scenario"]
    rows = query(
        scraped_warehouse["url"],
        "select channel_key, date_key, post_count, view_count::float8 / posts_with_views,"
        " views_per_subscriber_sum / posts_with_subscribers,"
        " reaction_count::float8 / posts_with_reactions"
        " from marts.rpt_channel_engagement_daily",
    )
    expected = scenario.expected_engagement("day")
    assert {(c, d) for c, d, *_ in rows} == set(expected)
    for channel, day, posts, views, per_subscriber, reactions in rows:
        truth = expected[(channel, day)]
        assert posts == truth["post_count"]
        assert views == pytest.approx(truth["views_per_post"])
        # fct_message_observations keeps views per subscriber to 4 decimals
        assert per_subscriber == pytest.approx(truth["views_per_subscriber"], abs=1e-4)
        assert reactions == pytest.approx(truth["reactions_per_post"])


def test_reactions_follow_the_newest_scrape_and_a_day_can_lose_them_all(scraped_warehouse):
    scenario = scraped_warehouse["scenario"]
    rows = query(
        scraped_warehouse["url"],
        "select reaction, channel_key, sum(reaction_count), sum(post_count)"
        " from marts.rpt_channel_reactions_daily group by 1, 2",
    )
    shown: dict[str, dict[str, int]] = {}
    for reaction, channel, count, _ in rows:
        shown.setdefault(reaction, {})[channel] = count
    assert shown == scenario.expected_reactions()
    # lobelia's first day had 👏 at the first build; the second build (incremental) saw
    # them gone, and its slice, left with no reaction at all, holds no row
    assert "lobelia4cosmetics" not in {channel for _, channel, *_ in rows}
    first = [r for r in scenario.readings if r["channel"] == "lobelia4cosmetics" and r["reactions"]]
    assert first, "the scenario gave lobelia reactions at the first scrape"
    assert query(
        scraped_warehouse["url"],
        "select count(*) from marts.rpt_channel_reactions_daily where reaction is null",
    ) == [(0,)]


def test_view_growth_buckets_every_reading_by_the_posts_age(scraped_warehouse):
    scenario = scraped_warehouse["scenario"]
    rows = query(
        scraped_warehouse["url"],
        "select channel_key, age_hours_from, sum(reading_count),"
        " sum(hours_since_post_sum) / sum(reading_count),"
        " sum(view_count_sum)::float8 / sum(readings_with_views),"
        " sum(views_per_subscriber_sum) / sum(readings_with_subscribers)"
        " from marts.rpt_view_growth_daily group by 1, 2",
    )
    expected = scenario.expected_growth()
    assert {(c, b) for c, b, *_ in rows} == set(expected)
    for channel, bucket, readings, hours, views, per_subscriber in rows:
        truth = expected[(channel, bucket)]
        assert readings == truth["reading_count"]
        assert hours == pytest.approx(truth["mean_hours_since_post"], abs=0.01)
        assert views == pytest.approx(truth["mean_views"])
        assert per_subscriber == pytest.approx(truth["mean_views_per_subscriber"], abs=1e-4)
    # views grow with age: the mean at a later bucket is higher, channel by channel
    for channel in scenario.SUBSCRIBERS:
        curve = [v for c, _, _, _, v, _ in sorted(rows) if c == channel]
        assert curve == sorted(curve), channel


def test_incremental_engagement_marts_equal_a_recomputation(scraped_warehouse):
    url = scraped_warehouse["url"]
    for name, (report, recomputed) in RECOMPUTED.items():
        assert set(query(url, report)) == set(query(url, recomputed)), name
