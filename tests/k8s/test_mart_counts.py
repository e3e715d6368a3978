"""The mart comparison the compose and Kubernetes e2e use (deploy/mart_counts.py):
every table and view of `marts` counted in one query, through any SQL runner, on a real
PostgreSQL; differences named per mart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "tgmed_mart_counts", ROOT / "deploy" / "mart_counts.py"
)
mart_counts_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mart_counts_module)


def test_every_mart_is_counted(fresh_database):
    url = fresh_database("marts")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema marts; create schema raw")
        conn.execute("create table marts.fct_a as select generate_series(1, 7) as id")
        conn.execute("create table marts.dim_b (id int)")
        conn.execute("create view marts.v_c as select id from marts.fct_a where id > 5")
        conn.execute("create table raw.not_a_mart as select 1 as id")
        queries: list[str] = []

        def query(sql: str) -> str:  # what psql -tAc returns: the value as text
            queries.append(sql)
            return str(conn.execute(sql).fetchone()[0] or "")

        counts = mart_counts_module.mart_counts(query)
    assert counts == {"dim_b": 0, "fct_a": 7, "v_c": 2}
    assert len(queries) == 2  # the names, then one count query over all of them


def test_an_odd_table_name_is_refused(fresh_database):
    url = fresh_database("marts")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('create schema marts; create table marts."x; drop table y" (id int)')
        with pytest.raises(SystemExit, match="unexpected table names"):
            mart_counts_module.mart_counts(lambda sql: str(conn.execute(sql).fetchone()[0] or ""))


def test_differences_name_each_mart():
    assert mart_counts_module.differences({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert mart_counts_module.differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == [
        "b: 2 != 3",
        "c: missing != 0",
    ]


def test_a_build_log_is_not_a_difference():
    """marts.dbt_builds gains a row per dbt build: a second run is not a different mart."""
    assert (
        mart_counts_module.differences(
            {"dbt_builds": 1, "fct_messages": 430}, {"dbt_builds": 2, "fct_messages": 430}
        )
        == []
    )
    assert mart_counts_module.differences({"fct_messages": 430}, {"fct_messages": 431}) == [
        "fct_messages: 430 != 431"
    ]
