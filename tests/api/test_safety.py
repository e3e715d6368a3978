"""Hostile search input answers 200 or 422 with a JSON body, never 500, and changes
nothing; the service's own connections are the read-only role's and cannot write."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tgmed_api.db import make_pool

HOSTILE = [
    "'; drop table marts.fct_messages; --",
    "' or 1=1 --",
    '" or ""="',
    "1); select pg_sleep(10); --",
    "paracetamol' union select current_user, null --",
    "%",
    "_",
    "%_%",
    "50%",
    "a_b",
    "\\",
    "\\'",
    "'",
    "''",
    ":*",
    "a & b | !c <-> d",
    "(((",
    "!!!",
    "💊",
    "💊 paracetamol 😀",
    "👩‍⚕️🇪🇹",
    "\u200b",
    "ፓራሲታሞል' --",
    "\x00",
    "a\x00b",
    " ",
    "x" * 200,
    "x" * 201,
    "ዋጋ " * 2000,  # 8 KB of Amharic words
    "a" * 10_240,  # 10 KB
    "' or '" * 2000,
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_search_is_answered_not_crashed(client, query):
    response = client.get("/api/search/messages", params={"query": query})
    assert response.status_code in (200, 422), response.text
    body = response.json()
    if response.status_code == 200:
        assert body["query"] == query and body["count"] == len(body["data"])
    else:
        assert body["detail"]


def test_hostile_search_changed_nothing(client, api_warehouse):
    for query in HOSTILE:
        client.get("/api/search/messages", params={"query": query})
    with psycopg.connect(api_warehouse["url"]) as conn:
        messages = conn.execute("select count(*) from marts.fct_messages").fetchone()[0]
    truth = api_warehouse["truth"]["channels"].values()
    assert messages == sum(c["messages"] for c in truth)
    assert client.get("/ready").status_code == 200


def test_a_long_query_is_refused_with_the_limit_named(client):
    response = client.get("/api/search/messages", params={"query": "a" * 10_240})
    assert response.status_code == 422
    assert "200" in str(response.json()["detail"])


async def _try_writes(settings) -> dict:
    """Through the pool the app builds (same settings, role and session options)."""
    pool = make_pool(settings)
    await pool.open(wait=True)
    outcome = {}
    try:
        async with pool.connection() as conn:
            outcome["user"] = (await (await conn.execute("select current_user")).fetchone())[
                "current_user"
            ]

            async def attempt(statements: dict[str, str]) -> None:
                for name, statement in statements.items():
                    try:
                        await conn.execute(statement)
                        outcome[name] = "written"
                    except psycopg.Error as error:
                        outcome[name] = type(error).__name__

            await attempt(
                {
                    "insert": "insert into marts.dim_products (product_key) values ('x')",
                    "create": "create table marts.sneaky (id int)",
                }
            )
            # past the session's read-only default: the role's own privileges refuse it
            await conn.execute("set default_transaction_read_only = off")
            await attempt(
                {
                    "insert_rw": "insert into marts.dim_products (product_key) values ('x')",
                    "update_rw": "update marts.fct_messages set view_count = 0",
                    "create_rw": "create table marts.sneaky (id int)",
                    "create_public_rw": "create table public.sneaky (id int)",
                    "read_raw": "select count(*) from raw.telegram_messages",
                    "read_staging": "select count(*) from staging.stg_telegram_messages",
                }
            )
            await conn.execute("reset default_transaction_read_only")
    finally:
        await pool.close()
    return outcome


def test_the_service_connects_read_only_and_cannot_write(api_settings):
    outcome = asyncio.run(_try_writes(api_settings))
    assert outcome.pop("user") == "tgmed_api"
    assert outcome.pop("insert") == outcome.pop("create") == "ReadOnlySqlTransaction"
    assert set(outcome.values()) == {"InsufficientPrivilege"}, outcome
