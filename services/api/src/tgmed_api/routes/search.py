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
match: the newest posts are walked first (posted_at index) until the page is full, at
most WALK_WINDOW of them, which fills the page of any word in more than about 0.5% of
the posts; a rarer word is answered from its GIN matches (fct_messages'
search_vector), which are then few, sorted. The planner is not trusted to tell the two
apart: its estimate for two prefix words together was off 100-fold (67 for 8,740),
which sorted 8,740 matches for a page of 20 (docs/benchmarks.md). The total is
counted up to TOTAL_LIMIT, or to the end of the page asked for when that is further
(beyond it: "more than").

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
from tgmed_api.deps import CacheDep, FilterDep, PoolDep, ReportFilter, cached_json
from tgmed_api.models import NO_NUL, MessageHit, SearchResults

router = APIRouter(prefix="/api/search", tags=["search"])

MAX_QUERY_LENGTH = 200
MAX_OFFSET = 10_000
TOTAL_LIMIT = 200
"""Matches counted at least this far (and always past the page asked for): a count is
bounded by the page, not by the match count."""

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


# Where a date range bounds posted_at itself (Addis Ababa days), so the newest-first
# walk starts inside the range instead of filtering its way back to it.
def _search_where(where: ReportFilter) -> sql.Composed:
    parts = [where.where(dates=False, prefix="m.")]
    if where.date_from is not None:
        parts.append(
            sql.SQL(
                " and m.posted_at >= (%(date_from)s::date::timestamp"
                " at time zone 'Africa/Addis_Ababa')"
            )
        )
    if where.date_to is not None:
        parts.append(
            sql.SQL(
                " and m.posted_at < ((%(date_to)s::date + 1)::timestamp"
                " at time zone 'Africa/Addis_Ababa')"
            )
        )
    return sql.Composed(parts)


# 1. The newest posts, walked on the posted_at index, newest first, until the page is
#    full (at most WALK_WINDOW posts): a word in more than about 0.5% of the posts fills
#    its page after needed/share posts, a cost set by the page, not by the match count.
WALK_SQL = """
select m.message_key
from (
    select m.message_key, m.posted_at, m.search_vector
    from marts.fct_messages as m
    where true {where}
    order by m.posted_at desc, m.message_key desc
    limit %(window)s
) as m
where m.search_vector @@ %(tsquery)s::tsquery
order by m.posted_at desc, m.message_key desc
limit %(needed)s
"""
# 2. Fewer matches than the page needs there: a rare word, whose GIN matches are few;
#    PostgreSQL sorts them (top-N) for the page.
PAGE_SQL = """
select m.message_key
from marts.fct_messages as m
where m.search_vector @@ %(tsquery)s::tsquery {where}
order by m.posted_at desc, m.message_key desc
limit %(limit)s offset %(offset)s
"""
HITS_SQL = """
select
    m.message_key,
    m.channel_key as channel_username,
    m.message_id,
    m.posted_at,
    m.message_text as text,
    m.view_count,
    ts_rank(m.search_vector, %(tsquery)s::tsquery) as rank
from marts.fct_messages as m
where m.message_key = any(%(keys)s)
order by m.posted_at desc, m.message_key desc
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
WALK_WINDOW = 5_000
WALK_PER_RESULT = 50  # deep pages walk further: posts per result needed (2% density)


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
        condition = _search_where(where)
        needed = offset + limit
        window = max(WALK_WINDOW, WALK_PER_RESULT * needed)
        walked = await fetch_all(
            pool,
            sql.SQL(WALK_SQL).format(where=condition),
            {**params, "window": window, "needed": needed},
        )
        if len(walked) >= needed:
            keys = [row["message_key"] for row in walked[offset:needed]]
        else:  # a rare word (or the last page): its GIN matches, which are few, sorted
            paged = await fetch_all(pool, sql.SQL(PAGE_SQL).format(where=condition), params)
            keys = [row["message_key"] for row in paged]
        total_limit = max(TOTAL_LIMIT, needed)
        if offset == 0 and len(keys) < limit:
            total = len(keys)  # every match is on this page
        else:
            counted = await fetch_all(
                pool,
                sql.SQL(COUNT_SQL).format(where=condition),
                {**params, "count_limit": total_limit + 1},
            )
            total = counted[0]["total"]
        rows = await fetch_all(pool, HITS_SQL, {"keys": keys, "tsquery": tsquery}) if keys else []
        hits = [MessageHit(**r) for r in rows]
        return SearchResults(
            query=query,
            total=min(total, total_limit),
            total_is_exact=total <= total_limit,
            total_limit=total_limit,
            limit=limit,
            offset=offset,
            data=hits,
            count=len(hits),
        )

    return await cached_json(cache, ("search", query, limit, offset, where.key()), build)
