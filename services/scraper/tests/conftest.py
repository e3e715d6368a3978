"""The fake Telegram (tgmed_sample.fake_telegram: real Telethon TL objects behind the
client methods the scraper calls) as fixtures. It lives in a module of its own so that
subprocess tests and the refresh benchmark can use it too."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tgmed_sample import fake_telegram
from tgmed_sample.fake_telegram import FakeTelegramClient


@pytest.fixture
def client() -> FakeTelegramClient:
    fake = FakeTelegramClient()
    fake.add_channel("CheMed123", count=30)
    return fake


@pytest.fixture
def tg():
    """The helpers of the fake, for tests (conftest modules are not importable by name)."""
    return SimpleNamespace(
        JPEG=fake_telegram.JPEG,
        START=fake_telegram.START,
        make_messages=fake_telegram.make_messages,
        grow_counts=fake_telegram.grow_counts,
        Client=FakeTelegramClient,
        module=fake_telegram,
    )
