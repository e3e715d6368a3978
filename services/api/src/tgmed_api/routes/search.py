"""Full-text search over message text, English and Amharic alike.

PostgreSQL full-text search with the 'simple' configuration: the default parser splits
Ge'ez script into words as it does Latin, and 'simple' only lower-cases (no stemming,
no stop words, which no Amharic dictionary here would get right). Every word of the
query must match the start of a word of the message (a prefix query), so `ፓራሲታሞል`
also finds `ፓራሲታሞሉ` (suffixed) and `para` finds `paracetamol`. The query text
becomes a tsquery inside PostgreSQL (to_tsvector, then each lexeme quoted and marked as
a prefix), never by formatting SQL: `%`, `_`, quotes and operators are plain
characters.

Newest posts first, so the cost of a page is bounded by the page, not by how many posts
match: a word in half the corpus is answered by walking the newest posts (posted_at
index) until the page is full; a rare word by its GIN index (fct_messages'
search_vector) and a sort of its few matches. The tsquery is computed first and passed
back as a value, so the planner sees the actual words and picks between the two. The
total is counted up to TOTAL_LIMIT (beyond it: "more than").

Words are letters and digits: emoji and punctuation are not words to the parser, so a
query made only of them (`💊`, `!!!`) has nothing to search for and is refused (422,
saying so); an emoji-only post cannot be found by its emoji. The sellers' template puts
✅ 💰 📍 📞 on most posts, so emoji would match most of the corpus and say nothing about
the market.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from psycopg import sql

from tgmed_api.db import fetch_all, fetch_one
from tgmed_api.deps import CacheDep, FilterDep, PoolDep, cached_json
from tgmed_api.models import NO_NUL, MessageHit, SearchResults

router = APIRouter(prefix="/api/search", tags=["search"])

MAX_QUERY_LENGTH = 200
MAX_OFFSET = 10_000
TOTAL_LIMIT = 1_000

EMPTY_QUERY = "the query is empty: give at least one word (English or Amharic)"
NO_WORD = (
    "the query has no word to search for: words are letters and digits; emoji and "
    "punctuation alone are not searchable"
)

# The query's words as a prefix tsquery: each lexeme quoted (quotes and backslashes
# doubled, as tsquery input wants) and marked `:*`, all required. NULL when the query
# has no word at all (only emoji or punctuation).
TSQUERY_SQL = r"""
select (
    select string_agg(
        '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & '
    )
    from unnest(to_tsvector('simple', %(query)s))
)::tsquery::text as tsquery
"""

PAGE_SQL = """
select
    m.message_key,
    m.channel_key as channel_username,
    m.message_id,
    m.posted_at,
    m.message_text as text,
    m.view_count,
    ts_rank(m.search_vector, %(tsquery)s::tsquery) as rank
from marts.fct_messages as m
where m.search_vector @@ %(tsquery)s::tsquery {where}
order by m.posted_at desc, m.message_key desc
limit %(limit)s offset %(offset)s
"""

COUNT_SQL = """
select count(*) as total
from (
    select 1
    from marts.fct_messages as m
    where m.search_vector @@ %(tsquery)s::tsquery {where}
    limit %(count_limit)s
) as matches
"""


@router.get(
    "/messages",
    response_model=SearchResults,
    summary="Messages matching every word of the query (prefixes), newest first",
    responses={422: {"description": "Empty query, no word in it, too long, bad filters"}},
)
async def search_messages(
    pool: PoolDep,
    cache: CacheDep,
    where: FilterDep,
    query: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_LENGTH,
            pattern=NO_NUL,
            description="Words to find, English or Amharic (each matches a word's start); "
            "emoji and punctuation are not words",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    if not query.strip():
        raise HTTPException(422, EMPTY_QUERY)

    async def build() -> SearchResults:
        found = await fetch_one(pool, TSQUERY_SQL, {"query": query})
        tsquery = found["tsquery"] if found else None
        if not tsquery:
            raise HTTPException(422, NO_WORD)
        params = {**where.params(), "tsquery": tsquery, "limit": limit, "offset": offset}
        page_sql = sql.SQL(PAGE_SQL).format(where=where.where(prefix="m."))
        rows = await fetch_all(pool, page_sql, params)
        if offset == 0 and len(rows) < limit:
            total = len(rows)  # the whole result is on this page
        else:
            count_sql = sql.SQL(COUNT_SQL).format(where=where.where(prefix="m."))
            counted = await fetch_all(pool, count_sql, {**params, "count_limit": TOTAL_LIMIT + 1})
            total = counted[0]["total"]
        hits = [MessageHit(**r) for r in rows]
        return SearchResults(
            query=query,
            total=min(total, TOTAL_LIMIT),
            total_is_exact=total <= TOTAL_LIMIT,
            total_limit=TOTAL_LIMIT,
            limit=limit,
            offset=offset,
            data=hits,
            count=len(hits),
        )

    return await cached_json(cache, ("search", query, limit, offset, where.key()), build)
