"""Incremental Telethon scrape of public channels into the lake.

Per channel: resume after the channel's high-water mark (`min_id`), oldest first, so
the mark can follow the files as they are written; on the first run take the newest
`--limit` messages or everything since `--since`. Photos are downloaded once. Short
FloodWaits are waited out, long ones fail the channel with a clear message. Channels
run concurrently up to a bound; one failing channel does not stop the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from telethon import errors
from telethon.tl import types

from tgmed_common.atomic import DiskFullError
from tgmed_common.lake import MESSAGES, Lake, new_run_id
from tgmed_common.progress import Progress
from tgmed_common.records import canonical_channel
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.convert import has_photo, message_to_record
from tgmed_scraper.writer import MessageBatchWriter

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScrapeError(RuntimeError):
    """A channel could not be scraped; the message says why and what to do."""


@dataclass(frozen=True)
class ScrapeOptions:
    since: datetime | None = None
    limit: int | None = None
    first_run_limit: int = 1000
    batch_size: int = 500
    concurrency: int = 4
    flood_wait_max_seconds: int = 120
    download_photos: bool = True
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep


@dataclass
class ChannelResult:
    channel: str
    messages: int = 0
    photos: int = 0
    photos_skipped: int = 0
    photo_errors: int = 0
    service_messages: int = 0
    flood_waits: int = 0
    high_water_mark: int = 0
    files: int = 0
    error: str | None = None


@dataclass
class ScrapeSummary:
    run_id: str
    channels: list[ChannelResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ChannelResult]:
        return [c for c in self.channels if c.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": "scrape",
            "run_id": self.run_id,
            "channels": len(self.channels),
            "messages": sum(c.messages for c in self.channels),
            "photos": sum(c.photos for c in self.channels),
            "photos_skipped": sum(c.photos_skipped for c in self.channels),
            "photo_errors": sum(c.photo_errors for c in self.channels),
            "files": sum(c.files for c in self.channels),
            "flood_waits": sum(c.flood_waits for c in self.channels),
            "failed_channels": {c.channel: c.error for c in self.failed},
            "high_water_marks": {c.channel: c.high_water_mark for c in self.channels},
        }


class ChannelScraper:
    def __init__(
        self, client: Any, lake: Lake, channel: str, run_id: str, options: ScrapeOptions
    ) -> None:
        self.client = client
        self.lake = lake
        self.channel = canonical_channel(channel)
        self.options = options
        self.result = ChannelResult(self.channel)
        self.writer = MessageBatchWriter(lake, HighWaterMarks(lake, MESSAGES), self.channel, run_id)

    async def _flood_safe(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await call()
            except errors.FloodWaitError as wait:
                await self._wait_out(wait, what)

    async def _wait_out(self, wait: errors.FloodWaitError, what: str) -> None:
        limit = self.options.flood_wait_max_seconds
        if wait.seconds > limit:
            raise ScrapeError(
                f"channel {self.channel}: Telegram asks to wait {wait.seconds}s before "
                f"{what}, more than SCRAPER_FLOOD_WAIT_MAX_SECONDS={limit}; re-run after "
                "that time (the scrape resumes where it stopped) or raise the limit"
            ) from None
        self.result.flood_waits += 1
        log.warning(
            "channel %s: FloodWait of %ds while %s; waiting it out",
            self.channel,
            wait.seconds,
            what,
        )
        await self.options.sleep(wait.seconds + 1)

    async def _messages(self, entity: Any, after_id: int) -> AsyncIterator[types.Message]:
        """Messages newer than `after_id`, oldest first, resuming after FloodWaits."""
        first_run = after_id == 0
        if first_run and self.options.since is None:
            # newest N: fetched newest-first, then handed out oldest-first
            wanted = self.options.limit or self.options.first_run_limit
            newest: list[types.Message] = []
            while len(newest) < wanted:
                offset_id = newest[-1].id if newest else 0
                try:
                    async for message in self.client.iter_messages(
                        entity, limit=wanted - len(newest), offset_id=offset_id
                    ):
                        newest.append(message)
                    break
                except errors.FloodWaitError as wait:
                    await self._wait_out(wait, "listing messages")
            for message in reversed(newest):
                yield message
            return
        last_id, given = after_id, 0
        while True:
            remaining = None if self.options.limit is None else self.options.limit - given
            if remaining is not None and remaining <= 0:
                return
            try:
                async for message in self.client.iter_messages(
                    entity,
                    min_id=last_id,
                    offset_date=self.options.since if first_run else None,
                    reverse=True,
                    limit=remaining,
                ):
                    last_id = max(last_id, message.id)
                    given += 1
                    yield message
                return
            except errors.FloodWaitError as wait:
                await self._wait_out(wait, "listing messages")

    async def _download_photo(self, entity: Any, message: types.Message) -> str | None:
        target = self.lake.media_file(self.channel, message.id, "jpg")
        if target.exists():
            self.result.photos_skipped += 1
            return self.lake.relative(target)
        try:
            with self.writer.batch.open(target) as stream:

                async def download(source: types.Message) -> None:
                    # every attempt starts from an empty file: a retry after a
                    # FloodWait or an expired reference must not append to a partial one
                    stream.seek(0)
                    stream.truncate()
                    await self.client.download_media(source, file=stream)

                try:
                    await self._flood_safe("downloading a photo", lambda: download(message))
                except errors.FileReferenceExpiredError:
                    # references expire after a while: fetch the message again, retry once
                    fresh = await self._flood_safe(
                        "refreshing a message",
                        lambda: self.client.get_messages(entity, ids=message.id),
                    )
                    if fresh is None:
                        raise
                    await self._flood_safe("downloading a photo", lambda: download(fresh))
            self.result.photos += 1
            return self.lake.relative(target)
        except (ScrapeError, DiskFullError):
            # a full lake is not a photo problem: keeping the message without its photo
            # would move the mark past a photo that is never fetched again
            raise
        except Exception as error:
            self.result.photo_errors += 1
            log.warning(
                "channel %s message %d: photo not downloaded (%s: %s); the message is kept "
                "without it",
                self.channel,
                message.id,
                type(error).__name__,
                error,
            )
            return None

    async def run(self) -> ChannelResult:
        after_id = self.writer.marks.get(self.channel)
        entity = await self._flood_safe(
            "resolving the channel", lambda: self.client.get_entity(self.channel)
        )
        title = getattr(entity, "title", None)
        channel_id = getattr(entity, "id", None)
        progress = Progress(f"scrape {self.channel}", unit="messages")
        log.info("channel %s: scraping after message id %d", self.channel, after_id)
        failed = True
        try:
            async for message in self._messages(entity, after_id):
                if not isinstance(message, types.Message):  # service or empty messages
                    self.result.service_messages += 1
                    self.writer.skip(message.id)
                    continue
                media_path = None
                if self.options.download_photos and has_photo(message):
                    media_path = await self._download_photo(entity, message)
                self.writer.add(
                    message_to_record(
                        message,
                        channel=self.channel,
                        channel_title=title,
                        channel_id=channel_id,
                        media_path=media_path,
                        scraped_at=datetime.now(UTC),
                    )
                )
                progress.advance()
                if len(self.writer.pending) >= self.options.batch_size:
                    self.writer.flush()
            failed = False
        finally:
            # on success and on failure alike, keep every message completely fetched
            try:
                self.writer.flush()
            except Exception:
                if not failed:
                    raise
                log.exception("channel %s: could not save the messages fetched", self.channel)
            self.result.messages = self.writer.written
            self.result.files = self.writer.files
            self.result.high_water_mark = self.writer.marks.get(self.channel)
        progress.done()
        return self.result


async def scrape_channels(
    client: Any, lake: Lake, channels: list[str], options: ScrapeOptions
) -> ScrapeSummary:
    """Scrape every channel with `client` (a connected, authorised TelegramClient or a
    test double with the same methods)."""
    summary = ScrapeSummary(run_id=new_run_id())
    gate = asyncio.Semaphore(options.concurrency)

    async def one(name: str) -> ChannelResult:
        async with gate:
            scraper = ChannelScraper(client, lake, name, summary.run_id, options)
            try:
                return await scraper.run()
            except Exception as error:
                message = (
                    str(error)
                    if isinstance(error, ScrapeError)
                    else (f"channel {scraper.channel}: {type(error).__name__}: {error}")
                )
                log.error("%s", message)
                scraper.result.error = message
                return scraper.result

    summary.channels = list(await asyncio.gather(*(one(c) for c in channels)))
    return summary
