"""What routes get from the app: the pool, the cache, and one way to answer JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Annotated

from fastapi import Depends, Request, Response
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from tgmed_api.cache import BuildCache


# async, though they do not await: FastAPI runs a plain `def` dependency in its thread
# pool, a hand-off that cost a cached answer about half its throughput
async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_cache(request: Request) -> BuildCache:
    return request.app.state.cache


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
CacheDep = Annotated[BuildCache, Depends(get_cache)]


def json_response(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


async def cached_json(
    cache: BuildCache, key: Hashable, build: Callable[[], Awaitable[BaseModel]]
) -> Response:
    """The answer for `key`, from the cache or built (a model, serialized once)."""

    async def serialized() -> bytes:
        return (await build()).model_dump_json().encode()

    return json_response(await cache.get_or_build(key, serialized))
