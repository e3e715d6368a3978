"""A stand-in for Telegram's servers, the one thing that cannot run here. It hands out
real Telethon TL objects (`telethon.tl.types.Message` with `MessageMediaPhoto`,
`MessageReplies`, `MessageReactions`, `MessageFwdHeader`, `MessageService`, the
`ChannelFull` of `channels.getFullChannel`) through the same client methods the scraper
calls on a real `TelegramClient`, with Telethon's own error classes. Messages are
finished the way Telethon finishes them (`Message._finish_init` with the response's
entities), so `message.forward.chat` is the source channel as with a real client.

Faults it can play, each at a point defined by progress (never by time): a FloodWait,
a connection lost after N messages, a server that stops answering after N messages, a
server that pads `min_id` pages with older messages, a download that stops half-way.

`TelethonOverFake` is a real `TelegramClient` whose requests are answered by the fake
instead of the network: its `iter_messages` is Telethon's own paging (offsets, reversal,
range checks, page size 100), over `messages.getHistory` pages the fake answers as
Telegram does or, with `pads_pages`, as a server that fills a short page with older
messages (a real open-source MTProto server does).

Used by the scraper's tests, by subprocess tests that kill a scrape, and by the
refresh benchmark.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telethon import TelegramClient, errors, utils
from telethon._updates import EntityCache
from telethon.sessions import StringSession
from telethon.tl import functions, types

from tgmed_sample.photos import PhotoPool

START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
JPEG = PhotoPool(seed=1).jpeg("coffee", 0)[0]
SOURCE_CHANNEL_ID = 777  # the channel some posts are forwarded from
SOURCE_CHANNEL_TITLE = "EFDA Ethiopia"


def channel_entity(username: str, channel_id: int, title: str | None = None) -> types.Channel:
    return types.Channel(
        id=channel_id,
        title=title or f"{username} title",
        photo=types.ChatPhotoEmpty(),
        date=START,
        broadcast=True,
        access_hash=channel_id * 7,
        username=username,
    )


def photo(message_id: int, reference: bytes = b"ref-1") -> types.Photo:
    return types.Photo(
        id=10_000 + message_id,
        access_hash=1,
        file_reference=reference,
        date=START,
        sizes=[types.PhotoSize(type="y", w=640, h=480, size=len(JPEG))],
        dc_id=4,
    )


def reactions_for(message_id: int) -> types.MessageReactions | None:
    """Every 4th post has reactions: 👍 and ❤ by count, a custom emoji on every 8th,
    paid stars on every 12th."""
    if message_id % 4:
        return None
    results = [
        types.ReactionCount(reaction=types.ReactionEmoji(emoticon="👍"), count=message_id),
        types.ReactionCount(reaction=types.ReactionEmoji(emoticon="❤"), count=message_id % 5),
    ]
    if message_id % 8 == 0:
        results.append(
            types.ReactionCount(reaction=types.ReactionCustomEmoji(document_id=5_001), count=2)
        )
    if message_id % 12 == 0:
        results.append(types.ReactionCount(reaction=types.ReactionPaid(), count=3))
    return types.MessageReactions(results=results)


def forward_for(message_id: int, when: datetime) -> types.MessageFwdHeader | None:
    """Every 11th post is a forward: from a channel (id and post id; every 22nd also
    carries a display name, as a signed or renamed forward does)."""
    if message_id % 11:
        return None
    return types.MessageFwdHeader(
        date=when - timedelta(hours=1),
        from_id=types.PeerChannel(SOURCE_CHANNEL_ID),
        from_name="EFDA" if message_id % 22 == 0 else None,
        channel_post=4_000 + message_id,
    )


def message(channel_id: int, message_id: int, *, every_hours: float = 6) -> Any:
    """Post `message_id`: every 10th is a service message, every 3rd has a photo, some
    are forwards, albums, replies and edits, every 4th has reactions."""
    when = START + timedelta(hours=every_hours * (message_id - 1))
    peer = types.PeerChannel(channel_id)
    if message_id % 10 == 0:
        return types.MessageService(
            id=message_id,
            peer_id=peer,
            date=when,
            action=types.MessageActionPinMessage(),
            out=False,
        )
    return types.Message(
        id=message_id,
        peer_id=peer,
        date=when,
        message=f"Paracetamol 500mg ዋጋ {message_id * 10} ብር #pharmacy",
        media=types.MessageMediaPhoto(photo=photo(message_id)) if message_id % 3 == 0 else None,
        views=100 + message_id,
        forwards=message_id % 4,
        replies=types.MessageReplies(replies=message_id % 5, replies_pts=1),
        reactions=reactions_for(message_id),
        edit_date=when + timedelta(minutes=5) if message_id % 7 == 0 else None,
        grouped_id=5555 if message_id in (3, 6) else None,
        fwd_from=forward_for(message_id, when),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=message_id - 1)
        if message_id % 13 == 0
        else None,
    )


def make_messages(
    channel_id: int, count: int, *, start_id: int = 1, every_hours: float = 6
) -> list:
    """`count` posts from `start_id` on, one every `every_hours` (so they span days)."""
    return [
        message(channel_id, message_id, every_hours=every_hours)
        for message_id in range(start_id, start_id + count)
    ]


def grow_counts(messages: list, views: int = 1000, forwards: int = 10, replies: int = 3) -> None:
    """What happens to posts over the days after a scrape: their counts grow."""
    for item in messages:
        if isinstance(item, types.Message):
            item.views = (item.views or 0) + views
            item.forwards = (item.forwards or 0) + forwards
            item.replies = types.MessageReplies(
                replies=item.replies.replies + replies, replies_pts=1
            )


async def _never() -> None:
    """A server that stopped answering: the request is sent, no answer ever comes."""
    await asyncio.Event().wait()


@dataclass
class FakeTelegramClient:
    """The subset of `TelegramClient` the scraper uses, over in-memory channels."""

    channels: dict[str, list] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    subscribers: dict[str, int | None] = field(default_factory=dict)
    iter_calls: list[dict] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)  # raw requests (client(request))
    downloads: list[int] = field(default_factory=list)
    fail_after: int | None = None  # connection lost after handing out this many messages
    stall_after: int | None = None  # stops answering after handing out this many messages
    pad_old: int = 0  # a min_id page also carries this many messages at or below min_id
    # messages.getHistory: a short page is filled up with older messages (see _history)
    pads_pages: bool = False
    hands_out_up_to: int | None = None  # listings stop there though newer messages exist
    full_channel_error: BaseException | None = None  # channels.getFullChannel raises it
    history_requests: list[Any] = field(default_factory=list)
    flood_waits: list[int] = field(default_factory=list)  # raised at the start of listings
    flood_at_listing: dict[int, int] = field(default_factory=dict)  # listing number -> wait
    expired_references: set[int] = field(default_factory=set)
    partial_then_flood: set[int] = field(default_factory=set)  # half a photo, then FloodWait
    # half a photo written, then the server stops answering; the marker file is created
    # at that point so a test (or another process) knows the download is under way
    stall_in_download: set[int] = field(default_factory=set)
    stall_marker: Path | None = None
    connected: bool = False
    _handed_out: int = 0
    _self_id: int = 1  # Telethon's Message._finish_init reads these two
    _mb_entity_cache: EntityCache = field(default_factory=EntityCache)

    def add_channel(
        self,
        username: str,
        messages: list | None = None,
        count: int = 30,
        subscribers: int | None = 1_500,
    ) -> None:
        channel_id = 1_000 + len(self.channels)
        self.ids[username.lower()] = channel_id
        self.subscribers[username.lower()] = subscribers
        self.channels[username.lower()] = (
            messages if messages is not None else make_messages(channel_id, count)
        )

    def message(self, channel: str, message_id: int) -> Any:
        return next(m for m in self.channels[channel] if m.id == message_id)

    # connection ---------------------------------------------------------------------
    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def is_user_authorized(self) -> bool:
        return True

    async def _answering(self) -> None:
        if self.stall_after is not None and self._handed_out >= self.stall_after:
            await _never()

    # what the scraper calls -----------------------------------------------------------
    async def get_entity(self, username: str) -> types.Channel:
        await self._answering()
        name = username.lower()
        if name not in self.channels:
            raise ValueError(f'No user has "{username}" as username')
        return channel_entity(name, self.ids[name])

    async def __call__(self, request: Any) -> Any:
        await self._answering()
        self.requests.append(request)
        if isinstance(request, functions.channels.GetFullChannelRequest):
            if self.full_channel_error is not None:
                raise self.full_channel_error
            # the scraper passes an InputChannel, as Telethon sends it
            wanted = utils.get_peer_id(request.channel, add_mark=False)
            name = next(n for n, i in self.ids.items() if i == wanted)
            full = types.ChannelFull(
                id=self.ids[name],
                about=f"{name}: medicines and cosmetics, delivery in Addis ☎ 0911",
                read_inbox_max_id=0,
                read_outbox_max_id=0,
                unread_count=0,
                chat_photo=types.PhotoEmpty(id=0),
                notify_settings=types.PeerNotifySettings(),
                bot_info=[],
                pts=1,
                participants_count=self.subscribers.get(name, 1_500),
            )
            return types.messages.ChatFull(
                full_chat=full, chats=[channel_entity(name, self.ids[name])], users=[]
            )
        if isinstance(request, functions.messages.GetHistoryRequest):
            return self._history(request)
        raise NotImplementedError(f"the fake Telegram does not answer {type(request).__name__}")

    def _history(self, request: functions.messages.GetHistoryRequest) -> Any:
        """One page of `messages.getHistory`, newest first: from the first message older
        than `offset_id` (or sent before `offset_date`; the newest when neither), moved
        by `add_offset`, `limit` of them. Telegram cuts a page that starts above the
        newest message short (offset -100 from 40 messages below the top: 40); with
        `pads_pages` the page starts at the top and holds `limit` all the same, older
        messages filling it."""
        self.history_requests.append(request)
        name = next(n for n, i in self.ids.items() if i == request.peer.channel_id)
        history = sorted(self.channels[name], key=lambda m: m.id, reverse=True)
        if request.offset_id:
            older = [i for i, m in enumerate(history) if m.id < request.offset_id]
        elif request.offset_date:
            older = [i for i, m in enumerate(history) if m.date < request.offset_date]
        else:
            older = [0]
        start = (older[0] if older else len(history)) + request.add_offset
        end = start + request.limit
        if self.pads_pages:
            start = max(start, 0)
            end = start + request.limit
        page = history[max(start, 0) : max(end, 0)]
        entity = channel_entity(name, self.ids[name])
        return types.messages.ChannelMessages(
            pts=1, count=len(history), messages=page, topics=[], chats=[entity], users=[]
        )

    def _finish(self, message: Any, entity: types.Channel) -> Any:
        """What Telethon does to every message it hands out: attach the response's
        entities (the channel itself, and the source channel of forwards)."""
        source = channel_entity("efdaethiopia", SOURCE_CHANNEL_ID, SOURCE_CHANNEL_TITLE)
        entities = {utils.get_peer_id(e): e for e in (entity, source)}
        message._finish_init(self, entities, utils.get_input_peer(entity))
        return message

    async def iter_messages(
        self, entity, limit=None, offset_date=None, offset_id=0, min_id=0, reverse=False
    ):
        self.iter_calls.append(
            dict(
                channel=entity.username,
                limit=limit,
                offset_id=offset_id,
                min_id=min_id,
                reverse=reverse,
                offset_date=offset_date,
            )
        )
        await self._answering()
        if self.flood_waits:
            raise errors.FloodWaitError(request=None, capture=self.flood_waits.pop(0))
        if len(self.iter_calls) in self.flood_at_listing:
            wait = self.flood_at_listing.pop(len(self.iter_calls))
            raise errors.FloodWaitError(request=None, capture=wait)
        history = self.channels[entity.username]
        chosen = [m for m in history if m.id > min_id]
        if self.hands_out_up_to is not None:
            chosen = [m for m in chosen if m.id <= self.hands_out_up_to]
        if reverse and min_id and self.pad_old:
            # Telethon does not check min_id when going in reverse: whatever older
            # messages the server puts in the page are handed out
            chosen = [m for m in history if m.id <= min_id][-self.pad_old :] + chosen
        if offset_id:
            chosen = [m for m in chosen if m.id < offset_id]
        if offset_date:
            chosen = [
                m for m in chosen if (m.date >= offset_date if reverse else m.date < offset_date)
            ]
        if not (reverse and self.pad_old):
            chosen.sort(key=lambda m: m.id, reverse=not reverse)
        for item in chosen[:limit] if limit is not None else chosen:
            if self.fail_after is not None and self._handed_out >= self.fail_after:
                raise ConnectionError("connection to Telegram lost")
            await self._answering()
            self._handed_out += 1
            yield self._finish(item, entity)

    async def get_messages(self, entity, ids):
        await self._answering()
        for item in self.channels[entity.username]:
            if item.id == ids:
                item.media.photo = photo(item.id, reference=b"ref-fresh")
                return self._finish(item, entity)
        return None

    async def download_media(self, message, file):
        await self._answering()
        photo_obj = message.media.photo
        if message.id in self.stall_in_download:
            file.write(JPEG[: len(JPEG) // 2])
            file.flush()
            if self.stall_marker is not None:
                self.stall_marker.write_text(str(message.id))
            await _never()
        if message.id in self.partial_then_flood:
            self.partial_then_flood.discard(message.id)
            file.write(JPEG[: len(JPEG) // 2])
            raise errors.FloodWaitError(request=None, capture=3)
        if message.id in self.expired_references and photo_obj.file_reference != b"ref-fresh":
            file.write(JPEG[:100])  # a download cut short by the expired reference
            raise errors.FileReferenceExpiredError(request=None)
        self.downloads.append(message.id)
        file.write(JPEG)
        return file


class TelethonOverFake(TelegramClient):
    """A real TelegramClient that never dials: every request goes to `fake` (above), so
    `iter_messages` runs Telethon's own paging over the fake's getHistory pages."""

    def __init__(self, fake: FakeTelegramClient) -> None:
        super().__init__(StringSession(), 1, "0" * 32, receive_updates=False)
        self.fake = fake

    async def connect(self) -> None:
        await self.fake.connect()

    async def disconnect(self) -> None:
        await self.fake.disconnect()

    async def is_user_authorized(self) -> bool:
        return True

    async def get_entity(self, entity: Any) -> Any:
        return await self.fake.get_entity(entity)

    async def get_messages(self, *args: Any, **kwargs: Any) -> Any:
        return await self.fake.get_messages(*args, **kwargs)

    async def download_media(self, *args: Any, **kwargs: Any) -> Any:
        return await self.fake.download_media(*args, **kwargs)

    async def __call__(self, request: Any, ordered: bool = False, flood_sleep_threshold=None):
        return await self.fake(request)
