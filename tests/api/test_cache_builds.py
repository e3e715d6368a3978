"""The answer cache is keyed on the dbt build that produced the marts: a partial build
and a new extraction version each change the next answer (before, the key was dim_channels'
relation and fct_messages' newest loaded_at, which neither of them touches), and after a
build the dashboard's default views are cached again before anyone asks."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app
from tgmed_devdb.server import with_user
from tgmed_extract.stage import extraction_record


@pytest.fixture(scope="module")
def cached(make_warehouse, thread_server, tmp_path_factory, api_keys):
    """Its own warehouse (these tests rebuild it) and an app with the cache on, reading
    the build version on every request (check interval 0)."""
    built = make_warehouse("cache")
    project = tmp_path_factory.mktemp("dbt-project") / "dbt"
    from tgmed_transform.settings import TransformSettings

    shutil.copytree(
        TransformSettings(database_url="postgresql://unused").dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "src"),
    )
    settings = ApiSettings(
        database_url=with_user(built["url"], "tgmed_api"), cache_size=512, cache_check_seconds=0
    )
    app = create_app(settings)
    make_key, bearer = api_keys
    headers = bearer(make_key(built["url"], "cache-tests"))
    with (
        thread_server(app) as server,
        httpx.Client(base_url=server.url, timeout=30, headers=headers) as client,
    ):
        yield {**built, "client": client, "app": app, "project": project}


def load_extraction(conn, channel: str, message_id: int, text: str, version: str = "") -> None:
    """The extract stage's record of `text` for a message, loaded as the loader does (a
    `version` other than the current one: another extractor's row beside it)."""
    now = datetime.now(UTC)
    record = extraction_record(channel, message_id, now, text)
    if version:
        record["extractor_version"] = version
    conn.execute(
        "insert into raw.message_extractions (channel_username, message_id, extractor_version,"
        " scraped_at, extracted_at, record, source_file) values (%s, %s, %s, %s, %s, %s, 'test')"
        " on conflict (channel_username, message_id, extractor_version) do update set"
        " scraped_at = excluded.scraped_at, extracted_at = excluded.extracted_at,"
        " record = excluded.record, loaded_at = now()",
        [channel, message_id, record["extractor_version"], now, now, Jsonb(record)],
    )


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
        key, message_id = conn.execute(
            "update raw.telegram_messages set loaded_at = now(),"
            " record = record || jsonb_build_object('text', 'Panadol\nPrice 9,999 birr')"
            " where (channel_username, message_id) = ("
            "   select channel_username, message_id from raw.telegram_messages"
            "   where record ->> 'text' ilike '%%paracetamol%%birr%%'"
            "   order by message_date limit 1)"
            " returning channel_username, message_id"
        ).fetchone()
        load_extraction(conn, key, message_id, "Panadol\nPrice 9,999 birr")
        relation = conn.execute("select 'marts.dim_channels'::regclass::oid").fetchone()[0]
        newest = conn.execute("select max(loaded_at) from marts.fct_messages").fetchone()[0]
    # only the text-to-price chain: dim_channels and fct_messages are not rebuilt
    transform(cached, "build", "--select", "int_message_extractions+")
    with psycopg.connect(cached["url"]) as conn:
        assert conn.execute("select 'marts.dim_channels'::regclass::oid").fetchone()[0] == relation
        assert conn.execute("select max(loaded_at) from marts.fct_messages").fetchone()[0] == newest
    after = prices(client)
    channel = next(c for c in after["data"] if c["channel_username"] == key)
    assert channel["max_price"] == 9999 and after != first


def test_a_new_extractor_version_changes_the_next_answer(cached):
    """A changed catalog or extractor is a new version of every message's extraction:
    it wins over the old one without reloading the messages."""
    client = cached["client"]
    first = prices(client)
    with psycopg.connect(cached["url"]) as conn:
        channel, message_id = conn.execute(
            "select channel_username, message_id from raw.message_extractions"
            " where record::text ilike '%%paracetamol%%' order by message_id desc limit 1"
        ).fetchone()
        load_extraction(conn, channel, message_id, "Paracetamol 500mg 4,321 birr", "9.9.9-test")
    transform(cached, "build", "--select", "int_message_extractions+")
    after = prices(client)
    assert after != first
    assert 4321 in {p["price"] for c in after["data"] for p in c["points"]}


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
