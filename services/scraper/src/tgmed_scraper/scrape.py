"""Incremental Telethon scrape of public channels into the lake.

Per channel, holding the channel's lock (orphaned temporary files of a run that died
are swept first):

1. the channel's snapshot: subscribers, title and description (`channels.getFullChannel`);
2. new messages: after the channel's high-water mark (`min_id`), oldest first, so the
   mark can follow the files as they are written; on the first run the newest `--limit`
   messages or everything since `--since`. The mark is defended, not trusted to the
   server: a message at or below it (a server padding its pages with older messages,
   which Telethon passes through in reverse mode) is dropped and counted;
3. the refresh window: the posts of the last `refresh_days` days, at or below the mark,
   re-read newest first in batches of 100 ids, so their views, forwards, replies and
   reactions stay fresh (the warehouse keeps the newest scrape of each message).

Every message read writes its record and an observation of its counts. Photos are
downloaded once. Every request to Telegram is bounded (`request_timeout`) and so is
each channel (`channel_timeout`): a server that stops answering fails the channel as a
transient failure naming it, with what was fetched saved. Short FloodWaits are waited
out, long ones fail the channel with a clear message. Channels run concurrently up to
a bound; one failing channel does not stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from telethon import errors, utils
from telethon.tl import functions, types

from tgmed_common.atomic import DiskFullError
from tgmed_common.channel_lock import ChannelBusy, hold_channel
from tgmed_common.lake import MESSAGES, Lake, new_run_id
from tgmed_common.progress import Progress
from tgmed_common.records import canonical_channel
from tgmed_common.state import HighWaterMarks
from tgmed_scraper.convert import has_photo, message_to_record, observation_of, snapshot_of
from tgmed_scraper.errors import (
    ChannelUnavailable,
    Incomplete,
    RateLimited,
    ScrapeError,
    SessionError,
    TransientScrapeError,
    clean_text,
    describe,
)
from tgmed_scraper.session import unknown_key_error
from tgmed_scraper.writer import MessageBatchWriter

log = logging.getLogger(__name__)
T = TypeVar("T")

REFRESH_BATCH = 100  # ids per request of the refresh window (Telegram's page size)
# failures of the network or of Telegram's servers: worth retrying as they are
_TRANSIENT = (
    ConnectionError,
    asyncio.IncompleteReadError,
    errors.ServerError,
    errors.TimedOutError,
    errors.RpcCallFailError,
)
_NO_SUCH_CHANNEL = (
    errors.UsernameNotOccupiedError,
    errors.UsernameInvalidError,
    errors.ChannelInvalidError,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScrapeOptions:
    since: datetime | None = None
    limit: int | None = None
    first_run_limit: int = 1000
    batch_size: int = 500
    concurrency: int = 4
    flood_wait_max_seconds: int = 120
    flood_wait_total_seconds: int = 600
    download_photos: bool = True
    refresh_days: int = 0  # the CLI's default is SCRAPER_REFRESH_DAYS
    request_timeout: float = 60.0
    channel_timeout: float = 3600.0
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    now: Callable[[], datetime] = _utc_now


@dataclass
class ChannelResult:
    channel: str
    read: int = 0  # messages Telegram handed out in the ranges asked for
    messages: int = 0  # new messages written (above the high-water mark)
    refreshed: int = 0  # messages of the refresh window written again
    service_messages: int = 0
    dropped_below_mark: int = 0  # at or below the mark in a new-messages page: not written
    observations: int = 0
    snapshots: int = 0
    subscribers: int | None = None
    photos: int = 0
    photos_skipped: int = 0
    photo_errors: int = 0
    flood_waits: int = 0
    flood_waited: int = 0  # seconds Telegram asked this channel to wait, waited out
    retry_at: str | None = None  # rate limited: when Telegram lets it ask again (UTC)
    high_water_mark: int = 0
    files: int = 0
    temp_files_swept: int = 0
    seconds: float = 0.0
    error: str | None = None
    failure: str | None = None  # the kind: transient, unavailable, rate_limited, failed
    # messages the server did not hand out (newest id - last id read): the run stopped short
    left: int = 0
    snapshot_error: str | None = None  # the snapshot could not be read (messages were)


_PER_CHANNEL = (
    "read",
    "messages",
    "refreshed",
    "service_messages",
    "dropped_below_mark",
    "photos",
    "seconds",
)


@dataclass
class ScrapeSummary:
    run_id: str
    refresh_days: int = 0
    channels: list[ChannelResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ChannelResult]:
        return [c for c in self.channels if c.error]

    @property
    def outcome(self) -> str:
        """ok; transient (every failure is worth retrying as is: the network, Telegram,
        a channel busy in another process); partial (a channel failed for a reason a
        retry does not fix: it does not exist, a long FloodWait)."""
        if not self.failed:
            return "ok"
        if all(c.failure == TransientScrapeError.kind for c in self.failed):
            return "transient"
        return "partial"

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.channels)

    def as_dict(self) -> dict[str, Any]:
        counted = (
            "read",
            "messages",
            "refreshed",
            "service_messages",
            "dropped_below_mark",
            "observations",
            "snapshots",
            "photos",
            "photos_skipped",
            "photo_errors",
            "files",
            "flood_waits",
            "temp_files_swept",
        )
        body: dict[str, Any] = {
            "stage": "scrape",
            "run_id": self.run_id,
            "outcome": self.outcome,
            "channels": len(self.channels),
            "refresh_days": self.refresh_days,
            **{name: self.total(name) for name in counted},
            "failed_channels": {c.channel: c.error for c in self.failed},
            "transient_channels": [
                c.channel for c in self.failed if c.failure == TransientScrapeError.kind
            ],
            "flood_waited_seconds": self.total("flood_waited"),
            "rate_limited_until": {c.channel: c.retry_at for c in self.channels if c.retry_at},
            "high_water_marks": {c.channel: c.high_water_mark for c in self.channels},
            # the server stopped short: newest id - last id read, per channel
            "messages_left": {c.channel: c.left for c in self.channels if c.left},
            "snapshot_errors": {
                c.channel: c.snapshot_error for c in self.channels if c.snapshot_error
            },
            "subscribers": {c.channel: c.subscribers for c in self.channels if c.snapshots},
            "by_channel": {
                c.channel: {n: getattr(c, n) for n in _PER_CHANNEL} for c in self.channels
            },
        }
        if self.outcome == "transient":
            # the stage failed as a whole for a reason worth retrying (a summary without
            # `error` means "input set aside" to the orchestrator, which is not retried)
            body["error"] = "transient failure, run again later: " + "; ".join(
                c.error or "" for c in self.failed
            )
        return body


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
        self.progress = Progress(f"scrape {self.channel}", unit="messages")

    # every request to Telegram goes through here ----------------------------------------
    async def _bounded(self, what: str, call: Awaitable[T]) -> T:
        """One request, within SCRAPER_REQUEST_TIMEOUT_SECONDS; a network failure or a
        silent server becomes a TransientScrapeError naming the channel."""
        limit = self.options.request_timeout
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
            # (SIGTERM, the channel's bound) that arrives as the answer does
            async with asyncio.timeout(limit):
                return await call
        except TimeoutError:
            raise TransientScrapeError(
                f"channel {self.channel}: Telegram did not answer within {limit:g}s "
                f"(SCRAPER_REQUEST_TIMEOUT_SECONDS) while {what}; the network or Telegram "
                f"is down or slow: run again later"
            ) from None
        except errors.AuthKeyNotFound:
            raise unknown_key_error() from None
        except _TRANSIENT as error:
            raise TransientScrapeError(
                f"channel {self.channel}: the connection to Telegram failed while {what} "
                f"({describe(error)}); run again later"
            ) from None

    async def _request(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A bounded request, repeated after FloodWaits short enough to wait out."""
        while True:
            try:
                return await self._bounded(what, call())
            except errors.FloodWaitError as wait:
                await self._wait_out(wait, what)

    async def _listing(self, what: str, listing: AsyncIterator[T]) -> AsyncIterator[T]:
        """An iteration over Telegram's pages with every step bounded."""
        iterator = listing.__aiter__()
        try:
            while True:
                try:
                    item = await self._bounded(what, iterator.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.options.request_timeout):
                        await close()

    async def _wait_out(self, wait: errors.FloodWaitError, what: str) -> None:
        """Wait a FloodWait out, unless it is longer than SCRAPER_FLOOD_WAIT_MAX_SECONDS
        or would bring this channel's waiting past SCRAPER_FLOOD_WAIT_TOTAL_SECONDS: then
        the channel stops (what was fetched is saved) and says until when to wait."""
        limit = self.options.flood_wait_max_seconds
        total = self.options.flood_wait_total_seconds
        until = self.options.now() + timedelta(seconds=wait.seconds)
        if wait.seconds > limit or self.result.flood_waited + wait.seconds > total:
            self.result.retry_at = until.strftime("%Y-%m-%dT%H:%M:%SZ")
            why = (
                f"more than SCRAPER_FLOOD_WAIT_MAX_SECONDS={limit}"
                if wait.seconds > limit
                else f"after {self.result.flood_waited}s of waits in this run, more than "
                f"SCRAPER_FLOOD_WAIT_TOTAL_SECONDS={total} in all"
            )
            raise RateLimited(
                f"channel {self.channel}: Telegram asks to wait {wait.seconds}s before "
                f"{what} (until {self.result.retry_at}), {why}; re-run after that time (the "
                "scrape resumes where it stopped) or raise the limit"
            ) from None
        self.result.flood_waits += 1
        self.result.flood_waited += wait.seconds
        log.warning(
            "channel %s: FloodWait of %ds while %s; waiting it out",
            self.channel,
            wait.seconds,
            what,
        )
        await self.options.sleep(wait.seconds + 1)

    # what is read ----------------------------------------------------------------------
    async def _resolve(self) -> types.Channel:
        try:
            entity = await self._request(
                "looking the channel up", lambda: self.client.get_entity(self.channel)
            )
        except errors.ChannelPrivateError:
            raise ChannelUnavailable(
                f"channel {self.channel} is private or this account was banned from it; "
                "only public channels can be scraped: remove it from the channel list"
            ) from None
        except (ValueError, *_NO_SUCH_CHANNEL):
            # Telethon says 'No user has "x" as username' for any unknown name
            raise ChannelUnavailable(
                f'channel {self.channel}: no public Telegram channel is called "{self.channel}"'
                " (the name is the part after t.me/); check the channel list"
            ) from None
        if not isinstance(entity, types.Channel):
            kind = "a user account" if isinstance(entity, types.User) else "not a channel"
            raise ChannelUnavailable(
                f"channel {self.channel}: @{self.channel} is {kind}, not a channel; "
                "check the channel list"
            )
        return entity

    async def _snapshot(self, entity: types.Channel) -> None:
        """The channel's snapshot: extra data, so a failure to read it (a layer the
        server does not speak, an error of its own) is reported and the messages are
        scraped all the same. A FloodWait too long to wait, a lost session or a dead
        connection still end the channel: the messages would meet them too."""
        try:
            full = await self._request(
                "reading the channel's info",
                lambda: self.client(
                    functions.channels.GetFullChannelRequest(
                        channel=utils.get_input_channel(entity)
                    )
                ),
            )
            snapshot = snapshot_of(full, channel=self.channel, observed_at=self.options.now())
        except (RateLimited, TransientScrapeError, SessionError, DiskFullError):
            raise
        except Exception as error:
            self.result.snapshot_error = clean_text(
                f"channel {self.channel}: its info (subscribers, title, description) could "
                f"not be read, its messages are scraped without a snapshot: {describe(error)}"
            )
            log.warning("%s", self.result.snapshot_error)
            return
        self.writer.add_snapshot(snapshot)
        self.result.subscribers = snapshot.subscribers

    async def _new_messages(self, entity: Any, after_id: int) -> AsyncIterator[types.Message]:
        """Messages newer than `after_id`, oldest first, resuming after FloodWaits. Never
        one at or below `after_id`, nor one already handed out, whatever the server
        sends: those are dropped and counted."""
        first_run = after_id == 0
        if first_run and self.options.since is None:
            # newest N: fetched newest-first, then handed out oldest-first
            wanted = self.options.limit or self.options.first_run_limit
            newest: dict[int, types.Message] = {}
            while len(newest) < wanted:
                offset_id = min(newest) if newest else 0
                try:
                    async for message in self._listing(
                        "listing messages",
                        self.client.iter_messages(
                            entity, limit=wanted - len(newest), offset_id=offset_id
                        ),
                    ):
                        newest.setdefault(message.id, message)
                    break
                except errors.FloodWaitError as wait:
                    await self._wait_out(wait, "listing messages")
            for message_id in sorted(newest)[-wanted:]:
                yield newest[message_id]
            return
        # Telethon ends a reverse listing at the first message of a page at or below
        # the last one it handed out, which a server padding its pages with older
        # messages sends before the newer ones: listing again after the last id goes on,
        # until a listing brings nothing new; then the channel's newest id says whether
        # the server stopped short (the channel is reported incomplete, nothing is lost)
        last_id, given, newest = after_id, 0, 0
        while True:
            remaining = None if self.options.limit is None else self.options.limit - given
            before = last_id
            try:
                async for message in self._listing(
                    "listing messages",
                    self.client.iter_messages(
                        entity,
                        min_id=last_id,
                        offset_date=self.options.since if last_id == 0 else None,
                        reverse=True,
                        limit=remaining,
                    ),
                ):
                    if message.id <= last_id:
                        self.result.read += 1
                        self.result.dropped_below_mark += 1
                        continue
                    last_id = message.id
                    given += 1
                    yield message
            except errors.FloodWaitError as wait:
                await self._wait_out(wait, "listing messages")
                continue
            if remaining is not None and given >= self.options.limit:
                return
            newest = newest or await self._newest_id(entity)
            if last_id >= newest:
                return
            if last_id == before:  # the server has newer messages but hands none out
                self.result.left = newest - last_id
                return

    async def _newest_id(self, entity: Any) -> int:
        """The id of the channel's newest message (0: none), one page of one message."""
        page = await self._request(
            "reading the channel's newest message id",
            lambda: self.client(
                functions.messages.GetHistoryRequest(
                    peer=utils.get_input_peer(entity),
                    offset_id=0,
                    offset_date=None,
                    add_offset=0,
                    limit=1,
                    max_id=0,
                    min_id=0,
                    hash=0,
                )
            ),
        )
        return max((m.id for m in getattr(page, "messages", [])), default=0)

    async def _recent_messages(self, entity: Any, upto_id: int) -> AsyncIterator[types.Message]:
        """The refresh window: messages at or below `upto_id` posted in the last
        `refresh_days` days, newest first, REFRESH_BATCH ids per request."""
        cutoff = self.options.now() - timedelta(days=self.options.refresh_days)
        offset = upto_id + 1  # Telegram lists ids below offset_id
        while offset > 1:
            try:
                page = [
                    message
                    async for message in self._listing(
                        "re-reading recent messages",
                        self.client.iter_messages(entity, limit=REFRESH_BATCH, offset_id=offset),
                    )
                ]
            except errors.FloodWaitError as wait:
                await self._wait_out(wait, "re-reading recent messages")
                continue  # the same batch again
            batch = sorted(
                {m.id: m for m in page if m.id < offset}.values(),
                key=lambda m: m.id,
                reverse=True,
            )
            for message in batch:
                if message.date < cutoff:
                    return
                yield message
            if len(page) < REFRESH_BATCH or not batch:
                return
            offset = batch[-1].id

    # writing -----------------------------------------------------------------------------
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
                    await self._request("downloading a photo", lambda: download(message))
                except errors.FileReferenceExpiredError:
                    # references expire after a while: fetch the message again, retry once
                    fresh = await self._request(
                        "refreshing a message",
                        lambda: self.client.get_messages(entity, ids=message.id),
                    )
                    if fresh is None:
                        raise
                    await self._request("downloading a photo", lambda: download(fresh))
            self.result.photos += 1
            return self.lake.relative(target)
        except (ScrapeError, SessionError, DiskFullError):
            # a full lake is not a photo problem: keeping the message without its photo
            # would move the mark past a photo that is never fetched again
            raise
        except Exception as error:
            self.result.photo_errors += 1
            log.warning(
                "channel %s message %d: photo not downloaded (%s); the message is kept without it",
                self.channel,
                message.id,
                describe(error),
            )
            return None

    async def _media_path(self, entity: Any, message: types.Message, refresh: bool) -> str | None:
        if refresh:  # the photo is in the lake already (unless its download failed then)
            existing = self.lake.media_file(self.channel, message.id, "jpg")
            if existing.exists():
                return self.lake.relative(existing)
        if self.options.download_photos and has_photo(message):
            return await self._download_photo(entity, message)
        return None

    async def _take(
        self, entity: types.Channel, message: Any, *, refresh: bool, scraped_at: datetime
    ) -> None:
        self.result.read += 1
        if not isinstance(message, types.Message):  # service or empty messages
            self.result.service_messages += 1
            if not refresh:
                self.writer.skip(message.id)
            return
        record = message_to_record(
            message,
            channel=self.channel,
            channel_title=entity.title,
            channel_id=entity.id,
            media_path=await self._media_path(entity, message, refresh),
            scraped_at=scraped_at,
        )
        self.writer.add(record, observation_of(record), refreshed=refresh)
        self.progress.advance()
        if len(self.writer.pending) >= self.options.batch_size:
            self.writer.flush()

    async def _scrape(self) -> None:
        after_id = self.writer.marks.get(self.channel)
        entity = await self._resolve()
        await self._snapshot(entity)
        log.info("channel %s: scraping after message id %d", self.channel, after_id)
        async for message in self._new_messages(entity, after_id):
            await self._take(entity, message, refresh=False, scraped_at=self.options.now())
        if self.options.refresh_days and after_id:
            log.info(
                "channel %s: re-reading the last %d days at or below message id %d",
                self.channel,
                self.options.refresh_days,
                after_id,
            )
            async for message in self._recent_messages(entity, after_id):
                await self._take(entity, message, refresh=True, scraped_at=self.options.now())
        if self.result.left:
            self.writer.flush()
            mark = self.writer.marks.get(self.channel)
            raise Incomplete(
                f"channel {self.channel}: the server stopped handing out messages after id "
                f"{mark} though its newest is {mark + self.result.left}: up to "
                f"{self.result.left} messages are left; run again, it resumes after {mark}"
            )

    async def run(self) -> ChannelResult:
        started = time.monotonic()
        with hold_channel(self.lake, self.channel) as hold:
            self.result.temp_files_swept = hold.swept
            failed = True
            try:
                await self._scrape()
                failed = False
            finally:
                # on success, failure and cancellation alike, keep every message
                # completely fetched (a photo cut short is never part of it)
                try:
                    self.writer.flush()
                except Exception:
                    if not failed:
                        raise
                    log.exception("channel %s: could not save the messages fetched", self.channel)
                self.result.refreshed = self.writer.refreshed_written
                self.result.messages = self.writer.written - self.writer.refreshed_written
                self.result.observations = self.writer.observations_written
                self.result.snapshots = self.writer.snapshots_written
                self.result.files = self.writer.files
                self.result.high_water_mark = self.writer.marks.get(self.channel)
                self.result.seconds = round(time.monotonic() - started, 3)
        self.progress.done()
        r = self.result
        log.info(
            "channel %s: read %d messages: %d new, %d refreshed, %d service, %d dropped at "
            "or below the high-water mark; %s subscribers; high-water mark %d",
            self.channel,
            r.read,
            r.messages,
            r.refreshed,
            r.service_messages,
            r.dropped_below_mark,
            "?" if r.subscribers is None else f"{r.subscribers:,}",
            r.high_water_mark,
        )
        return self.result


async def scrape_channels(
    client: Any,
    lake: Lake,
    channels: list[str],
    options: ScrapeOptions,
    summary: ScrapeSummary | None = None,
) -> ScrapeSummary:
    """Scrape every channel with `client` (a connected, authorised TelegramClient or a
    test double with the same methods). A session the server rejects (SessionError)
    ends the whole scrape; any other failure ends only its channel. `summary`, when
    given, is filled in even when the scrape is cancelled (a stop signal): what each
    started channel saved, under the run id its files carry."""
    if summary is None:
        summary = ScrapeSummary(run_id=new_run_id(), refresh_days=options.refresh_days)
    gate = asyncio.Semaphore(options.concurrency)
    names = list(dict.fromkeys(canonical_channel(c) for c in channels))
    results: dict[str, ChannelResult] = {}

    async def one(name: str) -> None:
        async with gate:
            scraper = ChannelScraper(client, lake, name, summary.run_id, options)
            results[name] = scraper.result
            limit = options.channel_timeout
            try:
                async with asyncio.timeout(limit):
                    await scraper.run()
            except SessionError:
                raise
            except TimeoutError:
                _fail(
                    scraper.result,
                    TransientScrapeError(
                        f"channel {name}: not finished within {limit:g}s "
                        "(SCRAPER_CHANNEL_TIMEOUT_SECONDS): run again to continue, or raise "
                        "the limit"
                    ),
                )
            except ChannelBusy as error:  # before anything was read: no mark to name
                _fail(scraper.result, TransientScrapeError(str(error)), saved=False)
            except ScrapeError as error:
                _fail(scraper.result, error)
            except Exception as error:
                _fail(scraper.result, ScrapeError(f"channel {name}: {describe(error)}"))

    try:
        async with asyncio.TaskGroup() as group:
            for name in names:
                group.create_task(one(name))
    except ExceptionGroup as failures:  # only a SessionError leaves `one`
        raise failures.exceptions[0] from None
    finally:  # cancelled too: the channels that started, with what they saved
        summary.channels = [results[name] for name in names if name in results]
    return summary


def _fail(result: ChannelResult, error: ScrapeError, *, saved: bool = True) -> None:
    text = str(error)
    if isinstance(error, TransientScrapeError) and saved:
        # named here, after run() saved what was fetched: the mark actually kept
        text += f"; it resumes after message {result.high_water_mark} (saved) with nothing lost"
    result.error = clean_text(text) or type(error).__name__
    result.failure = error.kind
    log.error("%s", result.error)
