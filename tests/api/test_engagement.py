"""The engagement endpoints over real HTTP: on the warehouse of real scrapes (four daily
scrapes through the fake Telegram; tests/conftest.py's EngagementScenario) against the
scenario's truth, and on the sample's warehouse (exports only), where there is nothing
to show and the answers say so without inventing numbers."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest


def get_ok(client, path: str, **params) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("period", ["day", "week"])
def test_subscribers_over_time(scraped_client, scraped_warehouse, period):
    scenario = scraped_warehouse["scenario"]
    body = get_ok(scraped_client, "/api/reports/subscribers", period=period)
    assert body["period"] == period and body["count"] == len(body["data"])
    shown = {
        (p["channel_username"], date.fromisoformat(p["period_start"])): p["subscriber_count"]
        for p in body["data"]
    }
    assert shown == scenario.expected_subscribers(period)
    for channel in scenario.SUBSCRIBERS:
        points = [p for p in body["data"] if p["channel_username"] == channel]
        assert points[0]["subscriber_change"] is None
        for before, after in itertools.pairwise(points):
            change = after["subscriber_count"] - before["subscriber_count"]
            assert after["subscriber_change"] == change
    assert sum(p["snapshot_count"] for p in body["data"]) == len(scenario.snapshots)


@pytest.mark.parametrize("period", ["day", "week"])
def test_engagement_per_period_of_posting(scraped_client, scraped_warehouse, period):
    scenario = scraped_warehouse["scenario"]
    body = get_ok(scraped_client, "/api/reports/engagement", period=period)
    expected = scenario.expected_engagement(period)
    shown = {
        (p["channel_username"], date.fromisoformat(p["period_start"])): p for p in body["data"]
    }
    assert set(shown) == set(expected)
    for key, truth in expected.items():
        point = shown[key]
        assert point["post_count"] == point["posts_with_views"] == truth["post_count"]
        assert point["views_per_post"] == pytest.approx(truth["views_per_post"])
        assert point["views_per_subscriber"] == pytest.approx(
            truth["views_per_subscriber"], abs=1e-4
        )
        assert point["reactions_per_post"] == pytest.approx(truth["reactions_per_post"])


def test_engagement_filters_by_channel_and_posting_days(scraped_client, scraped_warehouse):
    scenario = scraped_warehouse["scenario"]
    first = scenario.START.date() + timedelta(days=1)
    body = get_ok(
        scraped_client,
        "/api/reports/engagement",
        period="day",
        channel="CHEMED123",
        **{"from": first.isoformat(), "to": first.isoformat()},
    )
    assert [(p["channel_username"], p["period_start"]) for p in body["data"]] == [
        ("chemed123", first.isoformat())
    ]
    truth = scenario.expected_engagement("day")[("chemed123", first)]
    assert body["data"][0]["post_count"] == truth["post_count"]


def test_the_most_given_reactions(scraped_client, scraped_warehouse):
    expected = scraped_warehouse["scenario"].expected_reactions()
    body = get_ok(scraped_client, "/api/reports/reactions", limit=10)
    shown = {
        item["reaction"]: {c["channel_username"]: c["reaction_count"] for c in item["channels"]}
        for item in body["data"]
    }
    assert shown == expected  # lobelia's 👏 was withdrawn before the newest scrape
    totals = [item["reaction_count"] for item in body["data"]]
    assert totals == sorted(totals, reverse=True)
    assert all(item["reaction_kind"] == "emoji" for item in body["data"])
    top = get_ok(scraped_client, "/api/reports/reactions", limit=1)
    assert top["count"] == 1 and top["data"][0]["reaction"] == body["data"][0]["reaction"]


def test_views_growth_by_the_age_of_the_post(scraped_client, scraped_warehouse):
    expected = scraped_warehouse["scenario"].expected_growth()
    body = get_ok(scraped_client, "/api/reports/view-growth")
    shown = {(p["channel_username"], p["age_hours_from"]): p for p in body["data"]}
    assert set(shown) == set(expected)
    for key, truth in expected.items():
        point = shown[key]
        assert point["reading_count"] == truth["reading_count"]
        assert point["mean_hours_since_post"] == pytest.approx(
            truth["mean_hours_since_post"], abs=0.01
        )
        assert point["mean_views"] == pytest.approx(truth["mean_views"])
        assert point["mean_views_per_subscriber"] == pytest.approx(
            truth["mean_views_per_subscriber"], abs=1e-4
        )
        assert point["age_hours_to"] is None or point["age_hours_to"] > point["age_hours_from"]


def test_exports_alone_have_no_engagement_to_show(client):
    """The sample comes from Telegram Desktop exports: no snapshots, no readings, no
    views and no reactions. Nothing is invented: empty lists and nulls."""
    assert get_ok(client, "/api/reports/subscribers")["data"] == []
    assert get_ok(client, "/api/reports/view-growth")["data"] == []
    assert get_ok(client, "/api/reports/reactions")["data"] == []
    engagement = get_ok(client, "/api/reports/engagement", period="week")
    assert engagement["count"] > 0
    for point in engagement["data"]:
        assert point["post_count"] > 0
        assert point["posts_with_views"] == point["posts_with_subscribers"] == 0
        assert point["views_per_post"] is point["views_per_subscriber"] is None
        assert point["posts_with_reactions"] == 0 and point["reactions_per_post"] is None


def test_engagement_errors(client):
    assert client.get("/api/reports/engagement", params={"period": "month"}).status_code == 422
    reversed_range = client.get(
        "/api/reports/subscribers", params={"from": "2026-10-02", "to": "2026-10-01"}
    )
    assert reversed_range.status_code == 422
    assert client.get("/api/reports/reactions", params={"limit": 0}).status_code == 422
