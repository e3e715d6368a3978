"""Every endpoint over real HTTP, checked against what the sample generator wrote
(truth.json) and what the lake holds."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import date, timedelta, timezone

import pytest

from tgmed_common.lake import read_messages
from tgmed_sample.photos import CATEGORY, CONTENTS

EAT = timezone(timedelta(hours=3))


@pytest.fixture(scope="module")
def truth(api_warehouse) -> dict:
    return api_warehouse["truth"]


@pytest.fixture(scope="module")
def lake_messages(api_warehouse) -> list:
    lake = api_warehouse["lake"]
    return [record for path in lake.message_files() for record in read_messages(path)]


def get_ok(client, path: str, **params) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_health_and_ready(client):
    assert get_ok(client, "/health") == {"status": "ok"}
    assert get_ok(client, "/ready") == {"status": "ready"}


def test_openapi_docs_are_served(client):
    assert "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/reports/top-products",
        "/api/channels/{channel_username}/activity",
        "/api/search/messages",
        "/api/reports/visual-content",
        "/api/reports/prices",
        "/api/channels",
        "/health",
        "/ready",
    } <= set(paths)


def test_channels_with_totals(client, truth):
    body = get_ok(client, "/api/channels")
    assert body["count"] == len(body["data"]) == len(truth["channels"])
    got = {c["channel_username"]: c for c in body["data"]}
    for name, channel in truth["channels"].items():
        assert got[name]["channel_title"] == channel["title"]
        assert got[name]["post_count"] == channel["messages"]
        assert got[name]["image_post_count"] == channel["photos"]
        assert got[name]["first_post_at"] < got[name]["last_post_at"]
    posts = [c["post_count"] for c in body["data"]]
    assert posts == sorted(posts, reverse=True)


def test_activity_per_day_counts_every_post_and_every_day(client, truth, lake_messages):
    name = "chemed123"
    per_day = Counter(
        r.date.astimezone(EAT).date() for r in lake_messages if r.channel_username == name
    )
    images = Counter(
        r.date.astimezone(EAT).date()
        for r in lake_messages
        if r.channel_username == name and r.media_type == "photo"
    )
    body = get_ok(client, f"/api/channels/{name.upper()}/activity")  # any case
    assert body["channel_username"] == name and body["period"] == "day"
    first, last = min(per_day), max(per_day)
    assert (body["date_from"], body["date_to"]) == (first.isoformat(), last.isoformat())
    days = {date.fromisoformat(p["period_start"]): p for p in body["data"]}
    assert body["count"] == len(days) == (last - first).days + 1  # quiet days included
    assert {d: p["post_count"] for d, p in days.items() if p["post_count"]} == dict(per_day)
    assert sum(p["post_count"] for p in body["data"]) == truth["channels"][name]["messages"]
    for day, point in days.items():
        assert point["image_post_count"] == images[day]
        share = images[day] / per_day[day] if per_day[day] else 0
        assert point["media_share"] == pytest.approx(share)


def test_activity_per_week_within_a_range(client, lake_messages):
    name = "tikvahpharma"
    start, end = date(2026, 9, 1), date(2026, 9, 30)
    expected = Counter()
    for r in lake_messages:
        day = r.date.astimezone(EAT).date()
        if r.channel_username == name and start <= day <= end:
            expected[day - timedelta(days=day.weekday())] += 1
    body = get_ok(
        client, f"/api/channels/{name}/activity", period="week", **{"from": start, "to": end}
    )
    assert (body["date_from"], body["date_to"]) == ("2026-09-01", "2026-09-30")
    got = {date.fromisoformat(p["period_start"]): p["post_count"] for p in body["data"]}
    assert all(week.weekday() == 0 for week in got)
    assert {w: n for w, n in got.items() if n} == dict(expected)
    assert sum(got.values()) == sum(expected.values()) > 0


def test_activity_errors(client):
    missing = client.get("/api/channels/no_such_channel/activity")
    assert missing.status_code == 404
    assert "no_such_channel" in missing.json()["detail"]
    for params in (
        {"from": "2026-10-01", "to": "2026-09-01"},  # reversed
        {"from": "2026-13-01"},  # not a date
        {"to": "yesterday"},
        {"period": "month"},
    ):
        response = client.get("/api/channels/chemed123/activity", params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"]


def test_top_products_by_text_mentions(client, extracted):
    expected = Counter()
    channels: dict[str, set] = {}
    for name, channel in extracted.items():
        expected.update(channel["mentions"])
        for product, n in channel["mentions"].items():
            if n:
                channels.setdefault(product, set()).add(name)
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    body = get_ok(client, "/api/reports/top-products")
    assert body["source"] == "text" and body["count"] == 10
    assert [(p["key"], p["occurrences"]) for p in body["data"]] == top
    for item in body["data"]:
        assert set(item["channels"]) == channels[item["key"]]
        assert item["channel_count"] == len(channels[item["key"]])
    assert body["data"][0]["name"] == "Paracetamol"
    assert get_ok(client, "/api/reports/top-products", limit=3)["count"] == 3
    for limit in (0, 101, "ten"):
        assert client.get("/api/reports/top-products", params={"limit": limit}).status_code == 422


def test_top_detected_classes_from_images(client, truth):
    expected = Counter()
    for channel in truth["channels"].values():
        for source, n in channel["photo_sources"].items():
            for class_name in CONTENTS[source]:
                expected[class_name] += n
    body = get_ok(client, "/api/reports/top-products", source="image", limit=100)
    assert body["source"] == "image"
    assert {i["key"]: i["occurrences"] for i in body["data"]} == dict(expected)
    counts = [i["occurrences"] for i in body["data"]]
    assert counts == sorted(counts, reverse=True)
    assert all(i["category"] is None for i in body["data"])
    assert client.get("/api/reports/top-products", params={"source": "video"}).status_code == 422


def test_visual_content_per_channel(client, truth):
    body = get_ok(client, "/api/reports/visual-content")
    got = {c["channel_username"]: c for c in body["data"]}
    assert body["count"] == len(truth["channels"])
    for name, channel in truth["channels"].items():
        item = got[name]
        categories, classes = Counter(), Counter()
        for source, n in channel["photo_sources"].items():
            categories[CATEGORY[source]] += n
            for class_name in CONTENTS[source]:
                classes[class_name] += n
        assert item["image_post_count"] == item["images_analyzed"] == channel["photos"]
        assert item["image_post_share"] == pytest.approx(channel["photos"] / channel["messages"])
        assert item["categories"] == dict(categories)
        top = sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        assert [(c["class_name"], c["count"]) for c in item["top_classes"]] == top


def test_price_range_of_a_known_product(client, extracted):
    body = get_ok(client, "/api/reports/prices", product="paracetamol")
    assert (body["product_key"], body["currency"]) == ("paracetamol", "ETB")
    expected = {
        name: c["prices"]["paracetamol"]
        for name, c in extracted.items()
        if c["prices"].get("paracetamol")
    }
    assert body["count"] == len(expected) >= 2
    for item in body["data"]:
        prices = expected[item["channel_username"]]
        assert item["price_count"] == len(prices)
        assert item["min_price"] == min(prices) and item["max_price"] == max(prices)
        assert item["median_price"] == statistics.median(prices)
        # a price of the newest post (one post may give several: sizes, packs)
        assert item["latest_price"] in extracted[item["channel_username"]]["latest"]["paracetamol"]
    everything = [p for prices in expected.values() for p in prices]
    assert body["overall"] == {
        "price_count": len(everything),
        "min_price": min(everything),
        "median_price": statistics.median(everything),
        "max_price": max(everything),
    }


def test_prices_by_alias_and_unknown_product(client):
    by_key = get_ok(client, "/api/reports/prices", product="paracetamol")
    for alias in ("Panadol", "PARACETAMOL", "ፓራሲታሞል", " paracetamol "):
        assert get_ok(client, "/api/reports/prices", product=alias) == by_key
    missing = client.get("/api/reports/prices", params={"product": "unobtainium"})
    assert missing.status_code == 404 and "unobtainium" in missing.json()["detail"]
    assert client.get("/api/reports/prices").status_code == 422
    assert client.get("/api/reports/prices", params={"product": ""}).status_code == 422


def word_start(word: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}", text.lower()) is not None


@pytest.mark.parametrize("word", ["ፓራሲታሞል", "paracetamol", "ዋጋ"])
def test_search_finds_every_message_with_the_word(client, lake_messages, word):
    expected = {
        f"{r.channel_username}:{r.message_id}" for r in lake_messages if word_start(word, r.text)
    }
    assert expected
    found, offset = [], 0
    while True:
        body = get_ok(client, "/api/search/messages", query=word, limit=100, offset=offset)
        assert body["total"] == len(expected) and body["count"] == len(body["data"])
        assert body["total_is_exact"] and len(expected) <= body["total_limit"]
        found += body["data"]
        if len(body["data"]) < 100:
            break
        offset += 100
    assert {hit["message_key"] for hit in found} == expected
    assert all(word_start(word, hit["text"]) for hit in found)
    assert all(hit["rank"] > 0 for hit in found)
    # newest first across pages (what bounds a page's cost by the page)
    order = [(hit["posted_at"], hit["message_key"]) for hit in found]
    assert order == sorted(order, reverse=True)


def test_search_amharic_prefix_and_all_words(client, lake_messages):
    # an Amharic word's start finds it with its suffixes
    prefix = get_ok(client, "/api/search/messages", query="ፓራሲ", limit=5)
    assert prefix["total"] == sum(word_start("ፓራሲ", r.text) for r in lake_messages) > 0
    assert prefix["count"] == 5
    both = get_ok(client, "/api/search/messages", query="paracetamol ፓራሲታሞል", limit=100)
    expected = [
        r
        for r in lake_messages
        if word_start("paracetamol", r.text) and word_start("ፓራሲታሞል", r.text)
    ]
    assert both["total"] == len(expected) > 0


def test_search_pages_do_not_overlap(client):
    first = get_ok(client, "/api/search/messages", query="birr", limit=10)
    second = get_ok(client, "/api/search/messages", query="birr", limit=10, offset=10)
    assert first["total"] == second["total"] > 20
    assert not {h["message_key"] for h in first["data"]} & {
        h["message_key"] for h in second["data"]
    }
    past = get_ok(client, "/api/search/messages", query="birr", offset=10_000)
    assert past["data"] == [] and past["total"] == first["total"]
    for params in ({"query": "birr", "limit": 0}, {"query": "birr", "offset": -1}, {}):
        assert client.get("/api/search/messages", params=params).status_code == 422


def test_unknown_views_are_null_everywhere(client, lake_messages):
    """A view count the lake does not know is null in channel totals, activity and search
    alike (never 0); sums cover the known counts only; the schema says so."""
    views = {f"{r.channel_username}:{r.message_id}": r.views for r in lake_messages}
    for channel in get_ok(client, "/api/channels")["data"]:
        name = channel["channel_username"]
        known = [
            r.views for r in lake_messages if r.channel_username == name and r.views is not None
        ]
        assert channel["view_count"] == (sum(known) if known else None), name
    for hit in get_ok(client, "/api/search/messages", query="paracetamol", limit=100)["data"]:
        assert hit["view_count"] == views[hit["message_key"]]
    activity = get_ok(client, "/api/channels/chemed123/activity", period="day")["data"]
    for point in activity:
        day = date.fromisoformat(point["period_start"])
        known = [
            r.views
            for r in lake_messages
            if r.channel_username == "chemed123"
            and r.date.astimezone(EAT).date() == day
            and r.views is not None
        ]
        assert point["view_count"] == (sum(known) if known else None), day
        assert (point["views_per_post"] is None) == (not known)
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for model in ("Channel", "ActivityPoint", "MessageHit"):
        described = schema[model]["properties"]["view_count"]
        assert {"type": "null"} in described["anyOf"], model
        assert "null" in described["description"], model


def test_spaces_only_query_is_the_same_422_as_an_empty_one(client):
    empty = client.get("/api/search/messages", params={"query": ""})
    spaces = client.get("/api/search/messages", params={"query": "   \t "})
    assert empty.status_code == spaces.status_code == 422
    assert empty.json() == spaces.json()


def test_a_422_does_not_echo_a_long_query_whole(client):
    query = "ፓራሲታሞል " * 600  # about 5,400 characters
    response = client.get("/api/search/messages", params={"query": query})
    assert response.status_code == 422
    assert len(response.text) < 1_000
    assert "characters" in response.text and "200" in response.text


def test_emoji_are_not_searchable_words(client, lake_messages):
    """Decided (routes/search.py): words are letters and digits. A query of emoji only
    is refused, saying why; emoji beside a word are ignored."""
    with_pill = [r for r in lake_messages if "💰" in r.text]
    assert with_pill  # the sample's sellers use it: the posts exist, the emoji is no word
    refused = client.get("/api/search/messages", params={"query": "💰"})
    assert refused.status_code == 422 and "emoji" in refused.json()["detail"]
    both = get_ok(client, "/api/search/messages", query="💰 paracetamol", limit=5)
    alone = get_ok(client, "/api/search/messages", query="paracetamol", limit=5)
    assert both["total"] == alone["total"] > 0


def test_filters_by_channel_and_date_range(client, lake_messages, truth, extracted):
    name, start, end = "lobelia4cosmetics", date(2026, 9, 1), date(2026, 9, 30)
    in_range = [
        r
        for r in lake_messages
        if r.channel_username == name and start <= r.date.astimezone(EAT).date() <= end
    ]
    search = get_ok(
        client,
        "/api/search/messages",
        query="birr",
        channel=name.upper(),
        limit=100,
        **{"from": start, "to": end},
    )
    assert search["total"] == sum(word_start("birr", r.text) for r in in_range) > 0
    assert {h["channel_username"] for h in search["data"]} == {name}
    visual = get_ok(
        client, "/api/reports/visual-content", channel=name, **{"from": start, "to": end}
    )
    assert visual["count"] == 1
    assert visual["data"][0]["post_count"] == len(in_range)
    assert visual["data"][0]["image_post_count"] == sum(r.media_type == "photo" for r in in_range)
    top = get_ok(client, "/api/reports/top-products", channel=name, limit=100)
    expected = {k: n for k, n in extracted[name]["mentions"].items() if n}
    assert {i["key"]: i["occurrences"] for i in top["data"]} == expected
    assert all(i["channels"] == [name] for i in top["data"])
    reversed_range = client.get(
        "/api/reports/top-products", params={"from": "2026-10-01", "to": "2026-09-01"}
    )
    assert reversed_range.status_code == 422


def test_price_history_and_points_match_the_sample(client, extracted, lake_messages):
    body = get_ok(client, "/api/reports/prices", product="ፓራሲታሞል")
    for item in body["data"]:
        prices = extracted[item["channel_username"]]["prices"]["paracetamol"]
        assert {p["price"]: p["count"] for p in item["points"]} == dict(Counter(prices))
    history = get_ok(client, "/api/reports/prices/history", product="paracetamol", period="week")
    assert history["period"] == "week" and history["count"] == len(history["data"]) > 0
    per_channel = Counter()
    for point in history["data"]:
        assert date.fromisoformat(point["period_start"]).weekday() == 0
        assert point["min_price"] <= point["median_price"] <= point["max_price"]
        per_channel[point["channel_username"]] += point["price_count"]
    assert dict(per_channel) == {
        name: len(c["prices"]["paracetamol"])
        for name, c in extracted.items()
        if c["prices"].get("paracetamol")
    }
    # the weekly mart (unfiltered) and the daily histogram folded per week (a range
    # covering everything: open at its end, as API_MAX_RANGE_DAYS bounds closed ones) agree
    folded = get_ok(
        client,
        "/api/reports/prices/history",
        product="paracetamol",
        period="week",
        **{"from": "2000-01-01"},
    )
    assert folded["data"] == history["data"]
    days = get_ok(client, "/api/reports/prices/history", product="paracetamol", period="day")
    assert sum(p["price_count"] for p in days["data"]) == sum(per_channel.values())


@pytest.mark.parametrize("window", [5, 60, 100_000])
def test_search_pages_alike_whichever_path_answers(api_settings, thread_server, window, api_key):
    """The newest-first walk (common words), the GIN fallback (rare words) and the
    count give the same pages and totals: the walk window shrunk to force each path."""
    import httpx

    from tgmed_api.main import create_app
    from tgmed_api.routes import search

    settings = api_settings.model_copy(update={"cache_size": 0})
    with (
        pytest.MonkeyPatch.context() as patch,
        thread_server(create_app(settings)) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": api_key}) as http,
    ):
        answers = {}
        for size in (window, 100_000):
            patch.setattr(search, "WALK_WINDOW", size)
            patch.setattr(search, "WALK_PER_RESULT", 0 if size == window else 50)
            for query, offset in (("birr", 0), ("birr", 40), ("zithromax", 0), ("ፓራሲ", 10)):
                got = http.get(
                    "/api/search/messages", params={"query": query, "offset": offset, "limit": 20}
                ).json()
                answers.setdefault((query, offset), []).append(
                    (got["total"], [h["message_key"] for h in got["data"]])
                )
    for key, (small, large) in answers.items():
        assert small == large, key
        assert small[0] > 0, key


def assert_the_price_report_says_it(client, point: dict, days: dict[str, str]) -> None:
    """A price history point's statistics are the price report's for its channel over
    `days` (from, to)."""
    report = get_ok(
        client,
        "/api/reports/prices",
        product="paracetamol",
        channel=point["channel_username"],
        **days,
    )
    (row,) = report["data"]
    fields = ("price_count", "min_price", "median_price", "max_price", "latest_price", "latest_at")
    assert {f: point[f] for f in fields} == {f: row[f] for f in fields}, (point, days)


def test_price_history_statistics_equal_the_price_report_of_each_week(client):
    """The weekly history's statistics (rpt_price_stats_weekly, and the daily histogram
    folded in SQL for a range) equal the price report's (computed in Python from the
    histogram) for the same channel and week."""
    history = get_ok(client, "/api/reports/prices/history", product="paracetamol", period="week")
    assert history["count"] > 3
    for point in history["data"]:
        start = date.fromisoformat(point["period_start"])
        week = {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}
        assert_the_price_report_says_it(client, point, week)


def test_a_weekly_history_over_a_range_equals_the_price_report_of_each_part_week(client):
    """Over a range that starts and ends mid-week, the whole weeks (from
    rpt_price_stats_weekly) and the partial weeks at its ends (folded from the daily
    histogram) each equal the price report of the days of that week inside the range."""
    weeks = sorted(
        {
            date.fromisoformat(p["period_start"])
            for p in get_ok(
                client, "/api/reports/prices/history", product="paracetamol", period="week"
            )["data"]
        }
    )
    assert len(weeks) >= 3
    start, end = weeks[0] + timedelta(days=2), weeks[-1] + timedelta(days=3)
    history = get_ok(
        client,
        "/api/reports/prices/history",
        product="paracetamol",
        period="week",
        **{"from": start.isoformat(), "to": end.isoformat()},
    )
    starts = {date.fromisoformat(p["period_start"]) for p in history["data"]}
    assert {weeks[0], weeks[-1]} & starts and len(starts) >= 3
    for point in history["data"]:
        week = date.fromisoformat(point["period_start"])
        days = {
            "from": max(week, start).isoformat(),
            "to": min(week + timedelta(days=6), end).isoformat(),
        }
        assert_the_price_report_says_it(client, point, days)


def test_candidates_list_a_new_product_the_sample_names(client, truth):
    """The sample's local brand (no catalog holds it) is listed with its posts, channels
    and examples; known products and brands are not."""
    body = get_ok(client, "/api/reports/product-candidates")
    by_key = {c["key"]: c for c in body["data"]}
    new = by_key["hiwot glow"]
    assert new["post_count"] >= 3 and new["channels"]
    assert all("hiwot glow" in e["text"].lower() for e in new["examples"])
    assert len(new["examples"]) == min(3, new["post_count"])
    assert any(c["local_products"] for c in truth["channels"].values())
    assert not {"nivea", "paracetamol", "panadol"} & set(by_key)
    products = get_ok(client, "/api/reports/top-products", limit=100)["data"]
    assert "hiwot_glow" not in {p["key"] for p in products}
    # filters
    assert get_ok(client, "/api/reports/product-candidates", min_posts=1000)["count"] == 0
    one = get_ok(client, "/api/reports/product-candidates", channel=new["channels"][0])
    assert "hiwot glow" in {c["key"] for c in one["data"]}
    assert client.get("/api/reports/product-candidates", params={"limit": 0}).status_code == 422
