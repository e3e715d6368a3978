"""The connection pool (psycopg 3) and the few ways the routes read from it.

Every connection is the read-only role's, in read-only transactions by default, with a
statement timeout: the role's privileges are the guarantee, the session settings a
second belt. Queries are parameterized; nothing from a request is ever formatted into
SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.abc import Query
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tgmed_api.config import ApiSettings


async def _configure(conn: AsyncConnection) -> None:
    await conn.set_autocommit(True)  # one statement, one snapshot: no idle transactions


def make_pool(settings: ApiSettings) -> AsyncConnectionPool:
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={settings.statement_timeout_ms}"
        " -c application_name=tgmed-api"
    )
    return AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_max_size, settings.pool_min_size),
        # prepare_threshold None: every query planned with its actual values (a cached
        # generic plan cannot tell a rare search word from a common one)
        kwargs={"options": options, "row_factory": dict_row, "prepare_threshold": None},
        configure=_configure,
        open=False,
        timeout=settings.pool_timeout_seconds,
        name="tgmed-api",
    )


async def fetch_all(
    pool: AsyncConnectionPool, query: Query, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall()  # type: ignore[return-value]


async def fetch_one(
    pool: AsyncConnectionPool, query: Query, params: Sequence[Any] | Mapping[str, Any] = ()
) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchone()  # type: ignore[return-value]


# The newest dbt invocation that wrote to the warehouse (dbt's on-run-end hook,
# dbt/macros/record_build.sql); invocation ids are unique, so any build changes it.
BUILD_VERSION_SQL = """
select invocation_id, finished_at
from marts.dbt_builds
order by finished_at desc, invocation_id desc
limit 1
"""


async def build_version(pool: AsyncConnectionPool) -> tuple[Any, ...]:
    """The dbt build that produced the marts being read (see cache.py). Before the first
    recorded build (a warehouse older than the record) every read gives a new version,
    so nothing is cached rather than something stale."""
    try:
        row = await fetch_one(pool, BUILD_VERSION_SQL)
    except psycopg.errors.UndefinedTable:
        return ("unrecorded", object())
    return (row["invocation_id"], row["finished_at"]) if row else ("none", object())
