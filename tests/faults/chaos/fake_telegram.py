"""A stand-in for Telegram's servers (the one thing that cannot run here), for whole runs:
the scraper stage process, launched by Dagster as usual, gets this client instead of a
connected `TelegramClient` (hooks/sitecustomize.py swaps `create_client` when
TGMED_CHAOS_TELEGRAM names a configuration file). It hands out real Telethon TL objects
(`types.Message` with `MessageMediaPhoto`, `types.Channel`) through the client methods
the scraper calls, and raises Telethon's own `FloodWaitError` on a schedule: every
`flood_every`-th call, with lengths cycling through `flood_seconds`, and one long wait
for the channel named in `long_flood`. Every call and every FloodWait is appended to
`calls_file` (JSON lines) so the suite can see what the scraper waited for."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telethon import errors
from telethon.tl import types

START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
CONFIG_ENV = "TGMED_CHAOS_TELEGRAM"


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


def _photo(message_id: int, size: int) -> types.Photo:
    return types.Photo(
        id=10_000 + message_id,
        access_hash=1,
        file_reference=b"ref-1",
        date=START,
        sizes=[types.PhotoSize(type="y", w=640, h=480, size=size)],
        dc_id=4,
    )


def messages(channel_id: int, count: int, jpeg_size: int, photo_every: int) -> list:
    """Posts every 6 hours; every `photo_every`-th has a photo; every 10th is a service
    message."""
    made: list = []
    for message_id in range(1, count + 1):
        when = START + timedelta(hours=6 * (message_id - 1))
        peer = types.PeerChannel(channel_id)
        if message_id % 10 == 0:
            made.append(
                types.MessageService(
                    id=message_id, peer_id=peer, date=when, action=types.MessageActionPinMessage()
                )
            )
            continue
        with_photo = photo_every and message_id % photo_every == 0
        made.append(
            types.Message(
                id=message_id,
                peer_id=peer,
                date=when,
                message=f"Paracetamol 500mg ዋጋ {message_id * 10} ብር #pharmacy",
                media=types.MessageMediaPhoto(photo=_photo(message_id, jpeg_size))
                if with_photo
                else None,
                views=100 + message_id,
                forwards=message_id % 4,
                replies=types.MessageReplies(replies=message_id % 5, replies_pts=1),
            )
        )
    return made


@dataclass
class FakeTelegramClient:
    """The subset of `TelegramClient` the scraper uses, over in-memory channels."""

    config: dict[str, Any]
    channels: dict[str, list] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    floods: int = 0
    long_given: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        from tgmed_sample.photos import PhotoPool

        self.jpeg = PhotoPool(seed=1).jpeg("coffee", 0)[0]
        for index, (name, spec) in enumerate(sorted(self.config["channels"].items())):
            channel_id = 1_000 + index
            self.ids[name] = channel_id
            self.channels[name] = messages(
                channel_id, spec["messages"], len(self.jpeg), spec.get("photo_every", 3)
            )

    def _log(self, **entry: Any) -> None:
        path = self.config.get("calls_file")
        if path:
            with Path(path).open("a", encoding="utf-8") as out:
                out.write(json.dumps({"at": time.time(), "pid": os.getpid(), **entry}) + "\n")

    def _call(self, method: str, channel: str) -> None:
        """Count the call; every `flood_every`-th one answers FloodWait."""
        self.calls += 1
        self._log(call=method, channel=channel)
        every = self.config.get("flood_every", 0)
        if not every or self.calls % every:
            return
        long = self.config.get("long_flood") or {}
        if long.get("channel") == channel and channel not in self.long_given:
            self.long_given.add(channel)
            self._flood(method, channel, int(long["seconds"]))
        else:
            lengths = self.config.get("flood_seconds") or [1]
            self._flood(method, channel, int(lengths[self.floods % len(lengths)]))

    def _flood(self, method: str, channel: str, seconds: int) -> None:
        self.floods += 1
        self._log(flood=seconds, call=method, channel=channel)
        raise errors.FloodWaitError(request=None, capture=seconds)

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def is_user_authorized(self) -> bool:
        return True

    async def get_entity(self, username: str) -> types.Channel:
        name = username.lower().lstrip("@")
        self._call("get_entity", name)
        if name not in self.channels:
            raise ValueError(f'No user has "{username}" as username')
        return channel_entity(name, self.ids[name])

    async def iter_messages(
        self, entity, limit=None, offset_date=None, offset_id=0, min_id=0, reverse=False
    ):
        self._call("iter_messages", entity.username)
        chosen = [m for m in self.channels[entity.username] if m.id > min_id]
        if offset_id:
            chosen = [m for m in chosen if m.id < offset_id]
        if offset_date:
            chosen = [
                m for m in chosen if (m.date >= offset_date if reverse else m.date < offset_date)
            ]
        chosen.sort(key=lambda m: m.id, reverse=not reverse)
        for message in chosen[:limit] if limit is not None else chosen:
            yield message

    async def get_messages(self, entity, ids):
        self._call("get_messages", entity.username)
        for message in self.channels[entity.username]:
            if message.id == ids:
                return message
        return None

    async def download_media(self, message, file):
        channel = next(n for n, i in self.ids.items() if i == message.peer_id.channel_id)
        self._call("download_media", channel)
        file.write(self.jpeg)
        return file


def install() -> None:
    """Swap the scraper's client factory for the fake (called by hooks/sitecustomize.py
    in a `tgmed-scraper` process when TGMED_CHAOS_TELEGRAM is set)."""
    config = json.loads(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    import tgmed_scraper.cli as cli

    cli.create_client = lambda settings: FakeTelegramClient(config)
