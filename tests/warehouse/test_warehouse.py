"""The warehouse on the sample: loader and dbt build for real, then the business
questions answered from the marts and checked against what the generator wrote."""

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tgmed_common.lake import read_messages

EAT = timezone(timedelta(hours=3))


def query(url, sql, params=()):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_stage_succeeds_and_dbt_passes_every_test(warehouse):
    s = warehouse["summaries"]
    truth = warehouse["truth"]
    assert s["messages"]["exit_code"] == 0 and s["messages"]["quarantined"] == 0
    assert s["messages"]["rows"] == sum(c["messages"] for c in truth["channels"].values())
    assert s["detections"]["rows"] == sum(c["photos"] for c in truth["channels"].values())
    # one extraction per message (the lake is shared by the session: extracted once)
    assert s["extract"]["exit_code"] == 0 and not s["extract"]["failed"]
    assert s["extractions"]["exit_code"] == 0 and s["extractions"]["quarantined"] == 0
    (extracted_rows,) = query(warehouse["url"], "select count(*) from raw.message_extractions")[0]
    assert extracted_rows == s["messages"]["rows"]
    build = s["build"]
    assert build["exit_code"] == 0 and build["success"], build["failures"]
    counts = build["counts"]
    assert counts["test_pass"] >= 100 and counts["unit_test_pass"] == 5
    assert build["docs_published_bytes"] > 100_000  # the dbt docs site, published
    assert not any(k.endswith(("_fail", "_error", "_warn")) for k in counts)


def test_readme_states_the_number_of_tests_dbt_runs(warehouse):
    """The README's "N data tests and M unit tests" is what dbt build ran."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"(\d+) data tests and (\d+) unit\s+tests", readme)
    assert stated, "README.md no longer says how many dbt tests there are"
    counts = warehouse["summaries"]["build"]["counts"]
    ran = (counts.get("test_pass", 0), counts.get("unit_test_pass", 0))
    assert (int(stated[1]), int(stated[2])) == ran, f"README says {stated[0]!r}; dbt ran {ran}"


def test_top_ten_products_by_mentions(warehouse, extracted):
    rows = query(
        warehouse["url"],
        """
        select product_key, count(*) as mentions, count(distinct channel_key) as channels
        from marts.fct_product_mentions
        group by product_key order by mentions desc, product_key limit 10""",
    )
    expected = Counter()
    for channel in extracted.values():  # what the extract stage found in the lake
        expected.update(channel["mentions"])
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(key, count) for key, count, _ in rows] == top
    written = Counter()  # what the generator wrote: the same product leads
    for channel in warehouse["truth"]["channels"].values():
        written.update(channel["mentions"])
    assert rows[0][0] == "paracetamol" == written.most_common(1)[0][0]


def test_price_range_of_one_product_per_channel(warehouse, extracted):
    rows = query(
        warehouse["url"],
        """
        select channel_key, min(price_birr), max(price_birr), count(*)
        from marts.fct_product_prices where product_key = 'paracetamol'
        group by channel_key order by channel_key""",
    )
    expected = [
        (
            name,
            min(c["prices"]["paracetamol"]),
            max(c["prices"]["paracetamol"]),
            len(c["prices"]["paracetamol"]),
        )
        for name, c in sorted(extracted.items())
        if c["prices"].get("paracetamol")
    ]
    assert [(ch, float(lo), float(hi), n) for ch, lo, hi, n in rows] == expected
    # every price of every product, not just one
    all_rows = query(
        warehouse["url"],
        """
        select channel_key, product_key, array_agg(price_birr::float8 order by price_birr)
        from marts.fct_product_prices group by 1, 2""",
    )
    got = {(ch, p): prices for ch, p, prices in all_rows}
    for name, channel in extracted.items():
        for product, prices in channel["prices"].items():
            assert got[(name, product)] == sorted(prices), (name, product)


def test_images_per_channel_by_category(warehouse):
    rows = query(
        warehouse["url"],
        """
        select channel_key, image_category, count(*)
        from marts.fct_images group by 1, 2""",
    )
    got = {(ch, cat): n for ch, cat, n in rows}
    from tgmed_sample.photos import CATEGORY

    expected = Counter()
    for name, channel in warehouse["truth"]["channels"].items():
        for source, n in channel["photo_sources"].items():
            expected[(name, CATEGORY[source])] += n
    assert got == dict(expected)
    objects = query(
        warehouse["url"],
        """
        select class_name, count(*) from marts.fct_image_detections group by 1""",
    )
    assert dict(objects)["cup"] == sum(
        c["photo_sources"].get("coffee", 0) for c in warehouse["truth"]["channels"].values()
    )


def test_has_image_is_true_or_false_never_null(warehouse):
    """Issue 24: a post without media is has_image false, not null."""
    rows = dict(
        query(warehouse["url"], "select has_image, count(*) from marts.fct_messages group by 1")
    )
    truth = warehouse["truth"]["channels"].values()
    assert rows[True] == sum(c["photos"] for c in truth)
    assert rows[False] == sum(c["messages"] - c["photos"] for c in truth)
    assert None not in rows


def test_posts_per_day_and_per_week(warehouse):
    lake = warehouse["lake"]
    per_day, per_week = Counter(), Counter()
    for path in lake.message_files():
        for record in read_messages(path):
            day = record.date.astimezone(EAT).date()
            per_day[(record.channel_username, day)] += 1
            per_week[(record.channel_username, day - timedelta(days=day.weekday()))] += 1
    days = query(
        warehouse["url"],
        """
        select channel_key, date_key, count(*) from marts.fct_messages group by 1, 2""",
    )
    assert {(ch, d): n for ch, d, n in days} == dict(per_day)
    weeks = query(
        warehouse["url"],
        """
        select f.channel_key, d.week_start_date, count(*)
        from marts.fct_messages f join marts.dim_dates d using (date_key) group by 1, 2""",
    )
    assert {(ch, w): n for ch, w, n in weeks} == dict(per_week)
    calendar = query(
        warehouse["url"],
        """
        select count(*), min(date_key), max(date_key), count(*) filter (where is_weekend)
        from marts.dim_dates""",
    )[0]
    span = (calendar[2] - calendar[1]).days + 1
    assert calendar[0] == span >= 60  # a full calendar, days without posts included
    assert calendar[3] in {span * 2 // 7, span * 2 // 7 + 1, span * 2 // 7 + 2}


def test_api_role_reads_marts_and_is_refused_everything_else(warehouse):
    api_url = warehouse["url"].replace("postgresql://postgres:", "postgresql://tgmed_api:")
    with psycopg.connect(api_url) as conn:
        assert conn.execute("select count(*) from marts.fct_messages").fetchone()[0] > 0
        assert conn.execute("select current_user").fetchone()[0] == "tgmed_api"
    refused = [
        "insert into marts.fct_messages (message_key) values ('x:1')",
        "update marts.dim_channels set channel_title = 'x'",
        "delete from marts.fct_product_prices",
        "select count(*) from raw.telegram_messages",
        "create table public.sneaky (id int)",
        "create table marts.sneaky (id int)",
    ]
    for statement in refused:
        with psycopg.connect(api_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_reload_and_rebuild_change_nothing(warehouse):
    before = query(
        warehouse["url"],
        """
        select (select count(*) from marts.fct_messages), (select count(*) from marts.fct_images),
               (select count(*) from marts.fct_product_mentions),
               (select count(*) from marts.fct_product_prices)""",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", warehouse["url"])
        patch.setenv("LAKE_DIR", str(warehouse["lake"].root))
        patch.setenv("DBT_TARGET_PATH", str(warehouse["target"]))
        again = warehouse["stage"](warehouse["loader"], ["load", "all"])
        build = warehouse["stage"](warehouse["transform"], ["build"])
    assert all(s["loaded"] == 0 and s["skipped"] == s["files"] for s in again["streams"])
    assert build["success"]
    after = query(
        warehouse["url"],
        """
        select (select count(*) from marts.fct_messages), (select count(*) from marts.fct_images),
               (select count(*) from marts.fct_product_mentions),
               (select count(*) from marts.fct_product_prices)""",
    )
    assert before == after


def test_a_newer_scrape_updates_the_marts_incrementally(warehouse):
    lake = warehouse["lake"]
    ((path, *_),) = [lake.message_files()]
    original = next(iter(read_messages(path)))
    newer = original.model_copy(
        update={"views": 5000, "source": "telethon", "scraped_at": datetime.now(UTC)}
    )  # the import's scrape is older
    lake.write_records(
        lake.message_file(original.date.date(), original.channel_username, "rescrape"), [newer]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", warehouse["url"])
        patch.setenv("LAKE_DIR", str(lake.root))
        patch.setenv("DBT_TARGET_PATH", str(warehouse["target"]))
        loaded = warehouse["stage"](warehouse["loader"], ["load", "messages"])
        build = warehouse["stage"](warehouse["transform"], ["build"])
    assert loaded["loaded"] == 1 and loaded["upserted_files"] == 1 and build["success"]
    key = f"{original.channel_username}:{original.message_id}"
    views, total = query(
        warehouse["url"],
        """
        select (select view_count from marts.fct_messages where message_key = %s),
               (select count(*) from marts.fct_messages)""",
        [key],
    )[0]
    assert views == 5000
    assert total == sum(c["messages"] for c in warehouse["truth"]["channels"].values())


def test_docs_generate(warehouse):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", warehouse["url"])
        patch.setenv("DBT_TARGET_PATH", str(warehouse["target"]))
        summary = warehouse["stage"](warehouse["transform"], ["docs"])
    assert summary["exit_code"] == 0 and summary["docs_published_bytes"] > 100_000
    catalog = json.loads((warehouse["target"] / "catalog.json").read_text())
    assert "model.tgmed.fct_messages" in catalog["nodes"]
    # published where the API's read-only role reads it (served at /dbt-docs/)
    api_url = warehouse["url"].replace("postgresql://postgres:", "postgresql://tgmed_api:")
    (html,) = query(api_url, "select html from marts.dbt_docs where site = 'index'")[0]
    assert "rpt_price_points_daily" in html and "model.tgmed.fct_messages" in html


def test_dbt_result_events_become_dagster_dbt_materializations_and_checks(warehouse):
    """The contract between the transform stage and the code location: the result
    events the stage forwards (report.py), read by dagster-dbt with the committed
    manifest and the orchestrator's translator, name every model built and every test
    run, under the keys the code location defines; the stage counts each model's rows."""
    from dagster import AssetCheckEvaluation, AssetMaterialization
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

    from tgmed_common.settings import load_settings
    from tgmed_orchestrator.assets.dbt import MANIFEST, TRANSLATOR, dbt_models
    from tgmed_transform.cli import run_dbt
    from tgmed_transform.report import built_relation, relation_rows
    from tgmed_transform.settings import TransformSettings

    events: list[dict] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", warehouse["url"])
        patch.setenv("DBT_TARGET_PATH", str(warehouse["target"]))
        settings = load_settings(TransformSettings)
        summary = run_dbt(
            ["build", "--select", "dim_dates", "stg_telegram_messages"], settings, events
        )
        rows = relation_rows([r for r in map(built_relation, events) if r])
    assert summary["success"], summary["failures"]
    results = [
        result
        for raw in json.loads(json.dumps(events))  # as it crosses Pipes: plain JSON
        for result in DbtCoreCliEventMessage(raw, {}).to_default_asset_events(
            manifest=MANIFEST, dagster_dbt_translator=TRANSLATOR
        )
    ]
    built = {r.asset_key.to_user_string() for r in results if isinstance(r, AssetMaterialization)}
    assert built == {"marts/dim_dates", "staging/stg_telegram_messages"}
    checked = {r.asset_check_key for r in results if isinstance(r, AssetCheckEvaluation)}
    assert checked and all(r.passed for r in results if isinstance(r, AssetCheckEvaluation))
    assert checked <= set(dbt_models.check_keys)
    # every test of the models built (dbt's eager selection adds the relationship tests
    # of other models that reach them: outside a selection, Dagster records those as
    # observations, not check results)
    on_built = {k for k in dbt_models.check_keys if k.asset_key.to_user_string() in built}
    assert on_built and on_built <= checked
    tests = [e["data"]["node_info"]["unique_id"] for e in events]
    assert len(checked) == len([t for t in tests if t.startswith("test.")])  # unit tests: none
    (dates,) = query(warehouse["url"], "select count(*) from marts.dim_dates")[0]
    assert rows["marts.dim_dates"] == dates > 0
