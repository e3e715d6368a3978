"""The build-keyed answer cache: hits until the marts' build version changes."""

from __future__ import annotations

import asyncio
import contextlib

from tgmed_api.cache import BuildCache


class Builds:
    """A version source and an answer builder that count their calls."""

    def __init__(self) -> None:
        self.version = 1
        self.version_reads = 0
        self.built = 0

    async def read_version(self) -> int:
        self.version_reads += 1
        return self.version

    def builder(self, text: str):
        async def build() -> bytes:
            self.built += 1
            return f"{text}@{self.version}".encode()

        return build


def run(coro):
    return asyncio.run(coro)


def test_answers_are_cached_until_the_build_changes():
    builds = Builds()
    cache = BuildCache(builds.read_version, size=10, check_seconds=0)

    async def scenario() -> list[bytes]:
        first = await cache.get_or_build("a", builds.builder("a"))
        again = await cache.get_or_build("a", builds.builder("a"))
        builds.version = 2  # dbt rebuilt the marts
        after = await cache.get_or_build("a", builds.builder("a"))
        return [first, again, after]

    assert run(scenario()) == [b"a@1", b"a@1", b"a@2"]
    assert builds.built == 2 and cache.hits == 1 and cache.misses == 2


def test_the_version_is_read_at_most_every_check_interval():
    builds = Builds()
    cache = BuildCache(builds.read_version, size=10, check_seconds=3600)

    async def scenario() -> bytes:
        await cache.get_or_build("a", builds.builder("a"))
        builds.version = 2
        return await cache.get_or_build("a", builds.builder("a"))

    assert run(scenario()) == b"a@1"  # within the interval: the old build's answer
    assert builds.version_reads == 1
    cache.clear()
    assert run(cache.get_or_build("a", builds.builder("a"))) == b"a@2"


def test_size_bounds_the_entries_least_recently_used_first():
    builds = Builds()
    cache = BuildCache(builds.read_version, size=2, check_seconds=0)

    async def scenario() -> None:
        for key in ("a", "b", "a", "c"):  # c evicts b, the least recently used
            await cache.get_or_build(key, builds.builder(key))
        built = builds.built
        await cache.get_or_build("a", builds.builder("a"))
        assert builds.built == built
        await cache.get_or_build("b", builds.builder("b"))
        assert builds.built == built + 1

    run(scenario())


def test_size_zero_never_caches_nor_reads_the_version():
    builds = Builds()
    cache = BuildCache(builds.read_version, size=0, check_seconds=0)
    for _ in range(3):
        run(cache.get_or_build("a", builds.builder("a")))
    assert builds.built == 3 and builds.version_reads == 0


def test_a_failed_build_is_not_cached():
    builds = Builds()
    cache = BuildCache(builds.read_version, size=10, check_seconds=0)

    async def failing() -> bytes:
        raise LookupError("not found")

    async def scenario() -> bytes:
        with contextlib.suppress(LookupError):
            await cache.get_or_build("a", failing)
        return await cache.get_or_build("a", builds.builder("a"))

    assert run(scenario()) == b"a@1"
