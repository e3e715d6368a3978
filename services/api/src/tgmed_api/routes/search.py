"""Full-text search over message text, English and Amharic alike.

PostgreSQL full-text search with the 'simple' configuration: the default parser splits
Ge'ez script into words as it does Latin, and 'simple' only lower-cases (no stemming,
no stop words, which no Amharic dictionary here would get right). Every word of the
query must match the start of a word of the message (a prefix query), so `ፓራሲታሞል`
also finds `ፓራሲታሞሉ` (suffixed) and `para` finds `paracetamol`. The query text
becomes a tsquery inside PostgreSQL (to_tsvector, then each lexeme quoted and marked as
a prefix), never by formatting SQL: `%`, `_`, quotes and operators are plain
characters. fct_messages stores each text's tsvector (search_vector) with a GIN
index (the dbt model's post-hook) that serves the match; results are ranked by
ts_rank, then newest first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from tgmed_api.db import fetch_all
from tgmed_api.deps import CacheDep, PoolDep, cached_json
from tgmed_api.models import NO_NUL, MessageHit, SearchResults

router = APIRouter(prefix="/api/search", tags=["search"])

MAX_QUERY_LENGTH = 200
MAX_OFFSET = 10_000

# The query's words as a prefix tsquery: each lexeme quoted (quotes and backslashes
# doubled, as tsquery input wants) and marked `:*`, all required. NULL when the query
# has no word at all (only emoji or punctuation): it then matches nothing.
TSQUERY_SQL = r"""(
    select string_agg(
        '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & '
    )
    from unnest(to_tsvector('simple', %(query)s))
)::tsquery"""

# The matches are materialized once (key, rank, time): counted for the total, and
# ordered with LIMIT straight above the sort, so PostgreSQL keeps only the top rows
# (a bounded heap) instead of sorting every match; the texts are read for one page only.
SEARCH_SQL = sql.SQL("""
with search as (
    select {tsquery} as tsquery
),
matches as materialized (
    select m.message_key, m.posted_at, ts_rank(m.search_vector, search.tsquery) as rank
    from marts.fct_messages as m, search
    where m.search_vector @@ search.tsquery
),
page as (
    select message_key, rank
    from matches
    order by rank desc, posted_at desc, message_key
    limit %(limit)s offset %(offset)s
)
select
    m.message_key,
    m.channel_key as channel_username,
    m.message_id,
    m.posted_at,
    m.message_text as text,
    m.view_count,
    page.rank,
    (select count(*) from matches) as total
from page
inner join marts.fct_messages as m using (message_key)
order by page.rank desc, m.posted_at desc, m.message_key
""").format(tsquery=sql.SQL(TSQUERY_SQL))

COUNT_SQL = sql.SQL("""
select count(*) as total
from marts.fct_messages
where search_vector @@ {tsquery}
""").format(tsquery=sql.SQL(TSQUERY_SQL))


@router.get(
    "/messages",
    response_model=SearchResults,
    summary="Messages matching every word of the query (prefixes), best first",
)
async def search_messages(
    pool: PoolDep,
    cache: CacheDep,
    query: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
            pattern=NO_NUL,
            description="Words to find, English or Amharic (each matches a word's start)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    async def build() -> SearchResults:
        rows = await fetch_all(pool, SEARCH_SQL, {"query": query, "limit": limit, "offset": offset})
        total = rows[0]["total"] if rows else 0
        if not rows and offset:  # past the last page: the total still counts
            total = await _count(pool, query)
        hits = [MessageHit(**{k: v for k, v in r.items() if k != "total"}) for r in rows]
        return SearchResults(
            query=query, total=total, limit=limit, offset=offset, data=hits, count=len(hits)
        )

    return await cached_json(cache, ("search", query, limit, offset), build)


async def _count(pool: AsyncConnectionPool, query: str) -> int:
    rows = await fetch_all(pool, COUNT_SQL, {"query": query})
    return rows[0]["total"]
