"""The real Telegram client: Telethon with a StringSession from the environment, so a
container never needs a `.session` file."""

from __future__ import annotations

from telethon import TelegramClient
from telethon.sessions import StringSession

from tgmed_scraper.settings import TelegramAppSettings, TelegramSettings


def create_client(settings: TelegramAppSettings) -> TelegramClient:
    session = (
        StringSession(settings.session.get_secret_value())
        if isinstance(settings, TelegramSettings)
        else StringSession()
    )
    # flood_sleep_threshold=0: every FloodWait reaches our own policy (wait when short,
    # fail clearly when long) instead of Telethon sleeping silently.
    return TelegramClient(
        session,
        settings.api_id,
        settings.api_hash.get_secret_value(),
        flood_sleep_threshold=0,
        receive_updates=False,
    )
