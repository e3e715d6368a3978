"""Answers cached until the marts change.

The marts change only when dbt writes to the warehouse, and every dbt invocation that
writes (a full build, a partial `--select`, a seed) records itself in
`marts.dbt_builds` once all its nodes are done (an on-run-end hook). The newest record
is the build version: read at most every `check_seconds`, one index probe; when it
changes every cached answer is dropped, and the app warms the dashboard's default views
again (main.py). Answers are kept serialized (JSON bytes), so a hit costs no database
round trip, no model validation and no JSON encoding.
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
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._read_version = read_version
        self._on_change = on_change
        self._background: set[asyncio.Task] = set()
        self._size = size
        self._check_seconds = check_seconds
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._version: Hashable = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def version(self) -> Hashable:
        return self._version

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self._size > 0

    async def refresh(self, *, force: bool = False) -> bool:
        """Read the build version (unless read within `check_seconds`, or `force`); drop
        every answer when it changed. True when it changed."""
        if not force and time.monotonic() - self._checked_at < self._check_seconds:
            return False
        async with self._lock:  # one reader at a time; the others use its answer
            if not force and time.monotonic() - self._checked_at < self._check_seconds:
                return False
            version = await self._read_version()
            changed = version != self._version
            if changed:
                self._entries.clear()
                self._version = version
                if self._on_change is not None:  # warm up, without holding this request
                    task = asyncio.get_running_loop().create_task(self._on_change())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
            self._checked_at = time.monotonic()
            return changed

    async def get_or_build(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._size == 0:
            return await build()
        await self.refresh()
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
