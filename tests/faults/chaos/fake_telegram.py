"""Telegram for whole runs: the project's fake client (`tgmed_sample.fake_telegram`, real
Telethon TL objects through the client methods the scraper calls) with a FloodWait storm
on top, put in the scraper stage process that Dagster launches as usual
(hooks/sitecustomize.py swaps `create_client` when TGMED_CHAOS_TELEGRAM names this
module's configuration file; Telegram's servers cannot be reached from here).

The storm: every `flood_every`-th call answers Telethon's own `FloodWaitError`, of
lengths cycling through `flood_seconds`, except that the channel named in `long_flood`
gets one long wait the first time its turn comes. Every call and every FloodWait is
appended to `calls_file` (JSON lines), so the suite sees what the scraper was asked."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from telethon import errors, utils

from tgmed_sample.fake_telegram import FakeTelegramClient

CONFIG_ENV = "TGMED_CHAOS_TELEGRAM"


class StormClient(FakeTelegramClient):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.calls = 0
        self.floods = 0
        self.long_given: set[str] = set()
        for name, spec in sorted(config["channels"].items()):
            self.add_channel(name, count=spec["messages"])

    def _log(self, **entry: Any) -> None:
        path = self.config.get("calls_file")
        if path:
            with Path(path).open("a", encoding="utf-8") as out:
                out.write(json.dumps({"at": time.time(), "pid": os.getpid(), **entry}) + "\n")

    def _storm(self, method: str, channel: str) -> None:
        """Count the call; every `flood_every`-th one answers FloodWait."""
        self.calls += 1
        self._log(call=method, channel=channel)
        every = self.config.get("flood_every", 0)
        if not every or self.calls % every:
            return
        long = self.config.get("long_flood") or {}
        if long.get("channel") == channel and channel not in self.long_given:
            self.long_given.add(channel)
            seconds = int(long["seconds"])
        else:
            lengths = self.config.get("flood_seconds") or [1]
            seconds = int(lengths[self.floods % len(lengths)])
        self.floods += 1
        self._log(flood=seconds, call=method, channel=channel)
        raise errors.FloodWaitError(request=None, capture=seconds)

    def _channel_of(self, entity: Any) -> str:
        wanted = utils.get_peer_id(entity, add_mark=False)
        return next((n for n, i in self.ids.items() if i == wanted), "?")

    async def get_entity(self, username: str):
        self._storm("get_entity", username.lower().lstrip("@"))
        return await super().get_entity(username)

    async def __call__(self, request: Any) -> Any:
        channel = getattr(request, "channel", None)
        self._storm(type(request).__name__, self._channel_of(channel) if channel else "?")
        return await super().__call__(request)

    async def iter_messages(self, entity, *args: Any, **kwargs: Any):
        self._storm("iter_messages", entity.username)
        async for item in super().iter_messages(entity, *args, **kwargs):
            yield item

    async def get_messages(self, entity, ids):
        self._storm("get_messages", entity.username)
        return await super().get_messages(entity, ids)

    async def download_media(self, message, file):
        self._storm("download_media", self._channel_of(message.peer_id))
        return await super().download_media(message, file)


def install() -> None:
    """Swap the scraper's client factory for the storm (hooks/sitecustomize.py calls this
    in a `tgmed-scraper` process when TGMED_CHAOS_TELEGRAM is set)."""
    config = json.loads(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    import tgmed_scraper.cli as cli

    cli.create_client = lambda *args, **kwargs: StormClient(config)
