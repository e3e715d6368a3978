"""The answer cache is keyed on the dbt build that produced the marts: a partial build
and a seed change each change the next answer (before, the key was dim_channels'
relation and fct_messages' newest loaded_at, which neither of them touches), and after a
build the dashboard's default views are cached again before anyone asks."""

from __future__ import annotations

import shutil
import time

import httpx
import psycopg
import pytest

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app
from tgmed_devdb.server import with_user


@pytest.fixture(scope="module")
def cached(make_warehouse, thread_server, tmp_path_factory):
    """Its own warehouse (these tests rebuild it) and an app with the cache on, reading
    the build version on every request (check interval 0)."""
    built = make_warehouse("cache")
    project = tmp_path_factory.mktemp("dbt-project") / "dbt"
    from tgmed_transform.cli import TransformSettings

    shutil.copytree(
        TransformSettings(database_url="postgresql://unused").dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "src"),
    )
    settings = ApiSettings(
        database_url=with_user(built["url"], "tgmed_api"), cache_size=512, cache_check_seconds=0
    )
    app = create_app(settings)
    with thread_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield {**built, "client": client, "app": app, "project": project}


def transform(built, *args: str) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", built["url"])
        patch.setenv("DBT_TARGET_PATH", str(built["target"]))
        patch.setenv("DBT_PROJECT_DIR", str(built["project"]))
        patch.setenv("TRANSFORM_PUBLISH_DOCS", "false")
        summary = built["stage"](built["transform"], list(args))
    assert summary["success"], summary["failures"]
    return summary


def prices(client) -> dict:
    response = client.get("/api/reports/prices", params={"product": "paracetamol"})
    assert response.status_code == 200
    return response.json()


def test_a_partial_build_changes_the_next_answer(cached):
    client, cache = cached["client"], cached["app"].state.cache
    first = prices(client)
    assert prices(client) == first and cache.hits >= 1  # cached
    with psycopg.connect(cached["url"]) as conn:  # a seller corrects a price
        key = conn.execute(
            "update raw.telegram_messages set loaded_at = now(),"
            " record = record || jsonb_build_object('text', 'Panadol\nPrice 9,999 birr')"
            " where (channel_username, message_id) = ("
            "   select channel_username, message_id from raw.telegram_messages"
            "   where record ->> 'text' ilike '%%paracetamol%%price%%'"
            "   order by message_date limit 1)"
            " returning channel_username"
        ).fetchone()[0]
        relation = conn.execute("select 'marts.dim_channels'::regclass::oid").fetchone()[0]
        newest = conn.execute("select max(loaded_at) from marts.fct_messages").fetchone()[0]
    # only the text-to-price chain: dim_channels and fct_messages are not rebuilt
    transform(cached, "build", "--select", "int_message_lines+")
    with psycopg.connect(cached["url"]) as conn:
        assert conn.execute("select 'marts.dim_channels'::regclass::oid").fetchone()[0] == relation
        assert conn.execute("select max(loaded_at) from marts.fct_messages").fetchone()[0] == newest
    after = prices(client)
    channel = next(c for c in after["data"] if c["channel_username"] == key)
    assert channel["max_price"] == 9999 and after != first


def test_a_seed_change_changes_the_next_answer(cached):
    client = cached["client"]
    first = prices(client)
    assert first["product_name"] == "Paracetamol"
    products = cached["project"] / "seeds" / "products.csv"
    products.write_text(
        products.read_text(encoding="utf-8").replace(
            "paracetamol,Paracetamol,", "paracetamol,Paracetamol (acetaminophen),"
        ),
        encoding="utf-8",
    )
    transform(cached, "build", "--select", "products+")  # the seed and dim_products
    assert prices(client)["product_name"] == "Paracetamol (acetaminophen)"


def test_the_default_views_are_warm_after_a_build(cached):
    app = cached["app"]
    cache = app.state.cache
    transform(cached, "build", "--select", "dim_products")
    with psycopg.connect(cached["url"]) as conn:
        latest = conn.execute(
            "select invocation_id from marts.dbt_builds order by finished_at desc limit 1"
        ).fetchone()[0]
    # no request: the watcher notices the build; wait for its warm-up to finish (progress)
    deadline = time.monotonic() + 120
    while (app.state.warmed[0] or (None,))[0] != latest:
        assert time.monotonic() < deadline, f"no warm-up after the build: {app.state.warmed}"
        time.sleep(0.1)
    assert app.state.warmed[1] >= 10 and len(cache) >= 10
    hits = cache.hits
    response = cached["client"].get("/api/reports/visual-content", params={"top": 5})
    assert response.status_code == 200 and cache.hits == hits + 1
