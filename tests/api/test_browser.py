"""What a person sees, in headless Chromium (Debian's, driven by Playwright), offline:
the dashboard on the sample's warehouse with the sample's numbers, Amharic search
rendered in an Ethiopic font, the API docs (Swagger UI lists the endpoints and runs
one; ReDoc renders) and the dbt docs with the marts' lineage. Every request the browser
makes is recorded and any that is not for 127.0.0.1 is refused and fails the test.

TGMED_SCREENSHOT_DIR=docs/img saves a screenshot of each view (the README's pictures).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
from collections import Counter
from datetime import timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tgmed_common.lake import read_messages
from tgmed_sample.photos import CATEGORY, CONTENTS

EAT = timezone(timedelta(hours=3))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        message = "needs Chromium: apt-get install chromium chromium-driver (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
            locale="en-US",
        )
        outside: list[str] = []

        seen: list[str] = []  # every request that reached the network layer

        def only_loopback(route) -> None:
            seen.append(route.request.url)
            host = urlsplit(route.request.url).hostname
            if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        yield {"context": context, "outside": outside, "seen": seen}
        context.close()


@pytest.fixture
def page(browser):
    page = browser["context"].new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, errors
    assert browser["outside"] == [], f"requests leaving 127.0.0.1: {browser['outside']}"


def visit(page, base: str, path: str, key: str) -> None:
    """Open `path` as a person does: the sign-in page first (the dashboard and the docs
    need a key), the key pasted, then the page it sends back to."""
    page.context.clear_cookies()  # each server (port) has its own warehouse and keys
    page.goto("about:blank")  # from another page: a new fragment alone loads nothing
    page.goto(f"{base}{path}")
    page.wait_for_url(lambda url: urlsplit(url).path == "/signin")
    page.fill("#key", key)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: not urlsplit(url).path.startswith("/signin"))
    if "#" in path:  # a fragment does not travel through the sign-in form
        page.goto(f"{base}{path}")


def screenshot(page, name: str, selector: str | None = None) -> None:
    """The page (or one element of it) as docs/img/<name>.png when asked for."""
    folder = os.environ.get("TGMED_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = str(Path(folder) / f"{name}.png")
        if selector:
            page.locator(selector).screenshot(path=path)
        else:
            page.screenshot(path=path, full_page=True)


def loaded(page) -> None:
    page.wait_for_selector("body[data-loaded=true]", timeout=60_000)
    assert "error" not in (page.get_attribute("#status", "class") or ""), page.inner_text("#status")


def plot_data(page, element: str) -> list[dict]:
    return page.evaluate(
        f"""() => document.getElementById({element!r}).data.map(
            t => ({{name: t.name, type: t.type, x: Array.from(t.x || []),
                   y: Array.from(t.y || [])}}))"""
    )


@pytest.fixture(scope="module")
def lake_messages(api_warehouse) -> list:
    lake = api_warehouse["lake"]
    return [record for path in lake.message_files() for record in read_messages(path)]


def test_dashboard_shows_the_sample_numbers(
    page, api_server, api_warehouse, lake_messages, extracted, api_key
):
    truth = api_warehouse["truth"]["channels"]
    visit(page, api_server.url, "/dashboard/", api_key)
    loaded(page)
    screenshot(page, "dashboard")

    # posting trends: posts per week of each channel, from the rendered chart's data
    trends = {t["name"]: t for t in plot_data(page, "trends")}
    for name in truth:
        per_week = Counter()
        for r in lake_messages:
            if r.channel_username == name:
                day = r.date.astimezone(EAT).date()
                per_week[(day - timedelta(days=day.weekday())).isoformat()] += 1
        series = trends[f"{name} posts"]
        shown = {x[:10]: y for x, y in zip(series["x"], series["y"], strict=True) if y}
        assert shown == dict(per_week), name
        assert sum(series["y"]) == truth[name]["messages"]
    assert not any(name.endswith(" views") for name in trends)  # exports carry no views

    # top products: the stacked bars add up to each product's mentions
    expected = Counter()
    for channel in extracted.values():  # what the extract stage found
        expected.update(channel["mentions"])
    bars = plot_data(page, "top-products")
    totals = Counter()
    for trace in bars:
        for product, count in zip(trace["y"], trace["x"], strict=True):
            totals[product] += count
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert sorted(totals.values(), reverse=True) == [n for _, n in top]
    assert totals["Paracetamol"] == expected["paracetamol"]

    # top detected objects, per class
    objects = Counter()
    for channel in truth.values():
        for source, n in channel["photo_sources"].items():
            for class_name in CONTENTS[source]:
                objects[class_name] += n
    shown_objects = Counter()
    for trace in plot_data(page, "top-objects"):
        for name, count in zip(trace["y"], trace["x"], strict=True):
            shown_objects[name] += count
    assert shown_objects == objects

    # prices: the top product by default; each channel's range from the rendered table
    assert page.input_value("#product") == "paracetamol"
    for name, channel in extracted.items():  # the prices the extract stage found
        prices = channel["prices"].get("paracetamol")
        if not prices:
            continue
        row = page.locator(f"#price-table tr[data-channel='{name}']")
        assert float(row.locator(".min").inner_text()) == min(prices)
        assert float(row.locator(".max").inner_text()) == max(prices)
        assert float(row.locator(".median").inner_text()) == statistics.median(prices)
        assert float(row.locator(".latest").inner_text()) in channel["latest"]["paracetamol"]
    strip = [t for t in plot_data(page, "price-strip") if t["type"] == "scatter"]
    assert {float(y) for t in strip for y in t["y"]} == {
        float(p) for c in extracted.values() for p in c["prices"].get("paracetamol", [])
    }

    # visual content: photos per category per channel
    shown_categories = {}
    for trace in plot_data(page, "visual"):
        for channel, count in zip(trace["x"], trace["y"], strict=True):
            shown_categories[(channel, trace["name"].replace(" ", "_"))] = count
    for name, channel in truth.items():
        categories = Counter()
        for source, n in channel["photo_sources"].items():
            categories[CATEGORY[source]] += n
        for category in ("promotional", "product_display", "lifestyle", "other"):
            assert shown_categories[(name, category)] == categories[category], (name, category)


def test_dashboard_filters_and_prices_of_another_product(
    page, api_server, api_warehouse, extracted, api_key
):
    truth = extracted  # what the extract stage found
    visit(page, api_server.url, "/dashboard/", api_key)
    loaded(page)
    page.select_option("#channel", "tikvahpharma")
    page.fill("#from", "2026-09-01")
    page.fill("#to", "2026-09-30")
    page.dispatch_event("#to", "change")
    loaded(page)
    trends = plot_data(page, "trends")
    assert [t["name"] for t in trends] == ["tikvahpharma posts"]
    assert all("2026-08-31" <= x[:10] <= "2026-09-30" for x in trends[0]["x"])
    page.select_option("#channel", "")
    page.fill("#from", "")
    page.fill("#to", "")
    page.dispatch_event("#to", "change")
    loaded(page)
    product = next(
        k
        for k, _ in Counter(
            {k: len(v) for c in truth.values() for k, v in c["prices"].items()}
        ).most_common()
        if k != "paracetamol"
    )
    page.select_option("#product", product)
    loaded(page)
    for name, channel in truth.items():
        prices = channel["prices"].get(product)
        row = page.locator(f"#price-table tr[data-channel='{name}']")
        if not prices:
            assert row.count() == 0
            continue
        assert float(row.locator(".min").inner_text()) == min(prices)
        assert float(row.locator(".max").inner_text()) == max(prices)
    screenshot(page, "dashboard-prices", "#prices-card")


def test_engagement_from_real_scrapes(page, scraped_api_server, scraped_warehouse, scraped_api_key):
    """Four daily scrapes of two channels (the scraper over the fake Telegram's real
    Telethon objects): subscribers, views per subscriber, reactions and views growth as
    drawn, against what the scrapes read."""
    scenario = scraped_warehouse["scenario"]
    visit(page, scraped_api_server.url, "/dashboard/", scraped_api_key)
    loaded(page)
    assert page.is_hidden("#engagement-empty")
    page.select_option("#period", "day")
    loaded(page)

    subscribers = {
        (t["name"], x[:10]): y
        for t in plot_data(page, "subscribers")
        for x, y in zip(t["x"], t["y"], strict=True)
    }
    assert subscribers == {
        (channel, day.isoformat()): n
        for (channel, day), n in scenario.expected_subscribers("day").items()
    }

    engagement = scenario.expected_engagement("day")
    rates = {t["name"]: t for t in plot_data(page, "views-per-subscriber")}
    for channel in scenario.SUBSCRIBERS:
        shown = dict(zip((x[:10] for x in rates[channel]["x"]), rates[channel]["y"], strict=True))
        expected = {
            day.isoformat(): truth["views_per_subscriber"]
            for (name, day), truth in engagement.items()
            if name == channel
        }
        assert shown.keys() == expected.keys(), channel
        for day, value in expected.items():
            assert shown[day] == pytest.approx(value, abs=1e-4), (channel, day)
        reactions = rates[f"{channel} reactions"]
        shown = dict(zip((x[:10] for x in reactions["x"]), reactions["y"], strict=True))
        for (name, day), truth in engagement.items():
            if name == channel:
                assert shown[day.isoformat()] == pytest.approx(truth["reactions_per_post"])

    bars = Counter()
    for trace in plot_data(page, "reactions"):
        for emoji, count in zip(trace["y"], trace["x"], strict=True):
            if count:
                bars[(emoji, trace["name"])] += count
    assert dict(bars) == {
        (emoji, channel): n
        for emoji, per_channel in scenario.expected_reactions().items()
        for channel, n in per_channel.items()
    }

    growth = scenario.expected_growth()
    curves = {t["name"]: t for t in plot_data(page, "view-growth")}
    assert set(curves) == set(scenario.SUBSCRIBERS)
    for channel, curve in curves.items():
        expected = [truth for (name, _), truth in sorted(growth.items()) if name == channel]
        assert curve["x"] == pytest.approx([t["mean_hours_since_post"] for t in expected], abs=0.01)
        assert curve["y"] == pytest.approx([t["mean_views"] for t in expected])
        assert curve["y"] == sorted(curve["y"])  # views grow with the post's age
    screenshot(page, "dashboard-engagement", "#engagement-card")


def test_engagement_without_scrapes_says_so(page, api_server, api_key):
    """The sample holds exports only: the view says there is no scrape yet, and draws
    nothing it does not know."""
    visit(page, api_server.url, "/dashboard/", api_key)
    loaded(page)
    assert page.is_visible("#engagement-empty")
    assert page.inner_text("#engagement-empty").startswith("No Telegram scrapes yet")
    assert page.is_hidden("#engagement-plots")  # the sample's exports carry no reactions
    for element in ("subscribers", "views-per-subscriber", "reactions", "view-growth"):
        assert plot_data(page, element) == [], element


def rendering_fonts(page, selector: str) -> set[str]:
    """The fonts Chromium actually drew the element's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"] for f in fonts}


def test_amharic_search_returns_the_known_hits(page, api_server, lake_messages, api_key):
    word = "ፓራሲታሞል"
    expected = [r for r in lake_messages if re.search(rf"(?<!\w){re.escape(word)}", r.text.lower())]
    newest = sorted(expected, key=lambda r: (r.date, f"{r.channel_username}:{r.message_id}"))
    visit(page, api_server.url, "/dashboard/", api_key)
    loaded(page)
    page.fill("#query", word)
    page.click("#search-form button")
    loaded(page)
    summary = page.inner_text("#search-summary")
    assert summary.startswith(f"{len(expected)} posts match"), summary
    keys = page.eval_on_selector_all("#search-results li", "items => items.map(i => i.dataset.key)")
    assert keys == [f"{r.channel_username}:{r.message_id}" for r in reversed(newest)][:20]
    first_text = page.inner_text("#search-results li .text")
    assert word in first_text
    fonts = rendering_fonts(page, "#search-results li .text")
    assert any("Ethiopic" in f or "Abyssinica" in f for f in fonts), fonts
    screenshot(page, "dashboard-search", "#search-card")


def test_search_errors_are_shown_not_crashed(page, api_server, api_key):
    visit(page, api_server.url, "/dashboard/", api_key)
    loaded(page)
    page.fill("#query", "💊")
    page.click("#search-form button")
    loaded(page)
    assert "emoji" in page.inner_text("#search-summary")


def test_swagger_ui_lists_the_endpoints_and_runs_one(page, api_server, browser, api_key):
    visit(page, api_server.url, "/docs", api_key)
    page.wait_for_selector(".opblock", timeout=60_000)
    listed = set(
        page.eval_on_selector_all(".opblock-summary-path", "e => e.map(x => x.dataset.path)")
    )
    assert {
        "/api/reports/top-products",
        "/api/reports/prices",
        "/api/reports/prices/history",
        "/api/reports/visual-content",
        "/api/search/messages",
        "/api/channels",
        "/api/channels/{channel_username}/activity",
        "/health",
    } <= listed
    block = page.locator("#operations-health-health_health_get")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    response = block.locator(".live-responses-table .response-col_description pre").first
    response.wait_for(timeout=30_000)
    assert '"status": "ok"' in response.inner_text()
    screenshot(page, "swagger-ui")
    assert any(urlsplit(u).path.endswith("swagger-ui-bundle.js") for u in browser["seen"])


def test_redoc_renders_offline(page, api_server, api_key):
    visit(page, api_server.url, "/redoc", api_key)
    page.get_by_text("tgmed analytical API").first.wait_for(timeout=60_000)
    page.get_by_text("A product's prices per channel").first.wait_for(
        state="attached", timeout=60_000
    )
    screenshot(page, "redoc")


def test_dbt_docs_show_the_marts_lineage(page, api_server, api_key):
    visit(page, api_server.url, "/dbt-docs/#!/model/model.tgmed.rpt_price_points_daily", api_key)
    page.wait_for_selector("text=rpt_price_points_daily", timeout=60_000)
    page.wait_for_selector("text=Depends On", timeout=60_000)
    body = page.inner_text("body")
    # its parents and children, as dbt's lineage lists them on the model's page
    for name in ("fct_product_prices", "fct_messages", "rpt_price_points"):
        assert name in body, name
    page.locator(".launcher-btn, [ng-click*='launch']").first.click()
    page.wait_for_selector("canvas", timeout=60_000)
    screenshot(page, "dbt-docs-lineage")
    visit(page, api_server.url, "/dbt-docs/#!/model/model.tgmed.fct_product_prices", api_key)
    page.wait_for_selector("text=Referenced By", timeout=60_000)
    assert "rpt_price_points_daily" in page.inner_text("body")


def test_the_browser_asked_only_loopback(browser):
    assert browser["seen"], "no request was recorded"
    assert {urlsplit(u).hostname for u in browser["seen"] if u.startswith("http")} == {"127.0.0.1"}
    assert browser["outside"] == []
    assert any(urlsplit(u).path == "/assets/vendor/plotly.min.js" for u in browser["seen"])
