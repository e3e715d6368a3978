"""Answers cached until the marts change.

The marts change only when the pipeline's dbt build runs. Each build replaces the
`marts.dim_channels` table (a full-refresh model that every build runs), so its
relation id is a build version that costs one catalogue lookup to read. The version is
read at most every `check_seconds`; when it changes every cached answer is dropped.
Answers are kept serialized (JSON bytes), so a hit costs no database round trip, no
model validation and no JSON encoding.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable


class BuildCache:
    def __init__(
        self,
        read_version: Callable[[], Awaitable[Hashable]],
        *,
        size: int,
        check_seconds: float,
    ) -> None:
        self._read_version = read_version
        self._size = size
        self._check_seconds = check_seconds
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._version: Hashable = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.hits = 0
        self.misses = 0

    async def _refresh_version(self) -> None:
        if time.monotonic() - self._checked_at < self._check_seconds:
            return
        async with self._lock:  # one reader at a time; the others use its answer
            if time.monotonic() - self._checked_at < self._check_seconds:
                return
            version = await self._read_version()
            if version != self._version:
                self._entries.clear()
                self._version = version
            self._checked_at = time.monotonic()

    async def get_or_build(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._size == 0:
            return await build()
        await self._refresh_version()
        version = self._version
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        body = await build()
        if version == self._version:  # not across a build change
            self._entries[key] = body
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return body

    def clear(self) -> None:
        self._entries.clear()
        self._checked_at = float("-inf")
