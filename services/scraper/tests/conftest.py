"""A stand-in for Telegram's servers, the one thing that cannot run here. It hands out
real Telethon TL objects (`telethon.tl.types.Message` with `MessageMediaPhoto`,
`MessageReplies`, `MessageFwdHeader`, `MessageService`) through the same client methods
the scraper calls on a real `TelegramClient`, with Telethon's own error classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from telethon import errors
from telethon.tl import types

from tgmed_sample.photos import PhotoPool

START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
JPEG = PhotoPool(seed=1).jpeg("coffee", 0)[0]


def channel_entity(username: str, channel_id: int) -> types.Channel:
    return types.Channel(
        id=channel_id,
        title=f"{username} title",
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


def make_messages(channel_id: int, count: int, *, start_id: int = 1) -> list:
    """Posts every 6 hours (so they span several days); every 3rd has a photo, every 10th
    is a service message, some are forwards, albums and replies."""
    made = []
    for offset in range(count):
        message_id = start_id + offset
        when = START + timedelta(hours=6 * (message_id - 1))
        peer = types.PeerChannel(channel_id)
        if message_id % 10 == 0:
            made.append(
                types.MessageService(
                    id=message_id,
                    peer_id=peer,
                    date=when,
                    action=types.MessageActionPinMessage(),
                    out=False,
                )
            )
            continue
        made.append(
            types.Message(
                id=message_id,
                peer_id=peer,
                date=when,
                message=f"Paracetamol 500mg ዋጋ {message_id * 10} ብር #pharmacy",
                media=types.MessageMediaPhoto(photo=photo(message_id))
                if message_id % 3 == 0
                else None,
                views=100 + message_id,
                forwards=message_id % 4,
                replies=types.MessageReplies(replies=message_id % 5, replies_pts=1),
                edit_date=when + timedelta(minutes=5) if message_id % 7 == 0 else None,
                grouped_id=5555 if message_id in (3, 6) else None,
                fwd_from=types.MessageFwdHeader(date=when, from_name="EFDA")
                if message_id % 11 == 0
                else None,
                reply_to=types.MessageReplyHeader(reply_to_msg_id=message_id - 1)
                if message_id % 13 == 0
                else None,
            )
        )
    return made


@dataclass
class FakeTelegramClient:
    """The subset of `TelegramClient` the scraper uses, over in-memory channels."""

    channels: dict[str, list] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    iter_calls: list[dict] = field(default_factory=list)
    downloads: list[int] = field(default_factory=list)
    fail_after: int | None = None  # raise after handing out this many messages
    flood_waits: list[int] = field(default_factory=list)  # raised at the start of listings
    expired_references: set[int] = field(default_factory=set)
    partial_then_flood: set[int] = field(default_factory=set)  # half a photo, then FloodWait
    connected: bool = False
    _handed_out: int = 0

    def add_channel(self, username: str, messages: list | None = None, count: int = 30) -> None:
        channel_id = 1_000 + len(self.channels)
        self.ids[username.lower()] = channel_id
        self.channels[username.lower()] = (
            messages if messages is not None else make_messages(channel_id, count)
        )

    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def is_user_authorized(self) -> bool:
        return True

    async def get_entity(self, username: str) -> types.Channel:
        name = username.lower()
        if name not in self.channels:
            raise ValueError(f'No user has "{username}" as username')
        return channel_entity(name, self.ids[name])

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
        if self.flood_waits:
            raise errors.FloodWaitError(request=None, capture=self.flood_waits.pop(0))
        chosen = [m for m in self.channels[entity.username] if m.id > min_id]
        if offset_id:
            chosen = [m for m in chosen if m.id < offset_id]
        if offset_date:
            chosen = [
                m for m in chosen if (m.date >= offset_date if reverse else m.date < offset_date)
            ]
        chosen.sort(key=lambda m: m.id, reverse=not reverse)
        for message in chosen[:limit] if limit is not None else chosen:
            if self.fail_after is not None and self._handed_out >= self.fail_after:
                raise ConnectionError("connection to Telegram lost")
            self._handed_out += 1
            yield message

    async def get_messages(self, entity, ids):
        for message in self.channels[entity.username]:
            if message.id == ids:
                message.media.photo = photo(message.id, reference=b"ref-fresh")
                return message
        return None

    async def download_media(self, message, file):
        photo_obj = message.media.photo
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


@pytest.fixture
def client() -> FakeTelegramClient:
    fake = FakeTelegramClient()
    fake.add_channel("CheMed123", count=30)
    return fake


@pytest.fixture
def tg():
    """The helpers above, for tests (conftest modules are not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        JPEG=JPEG, START=START, make_messages=make_messages, Client=FakeTelegramClient
    )
