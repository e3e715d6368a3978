"""Scraper configuration, all from the environment (see .env.example)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config
from tgmed_scraper.export_files import DEFAULT_MAX_PHOTO_BYTES


class TelegramAppSettings(BaseSettings):
    """The API application (my.telegram.org): enough to log in."""

    model_config = env_config("TELEGRAM_")

    api_id: int
    api_hash: SecretStr


class TelegramSettings(TelegramAppSettings):
    """A logged-in session as well (the StringSession printed by `login`)."""

    session: SecretStr


class ScraperSettings(BaseSettings):
    model_config = env_config("SCRAPER_")

    concurrency: int = Field(default=4, ge=1, le=32)
    """Channels scraped at the same time."""
    flood_wait_max_seconds: int = Field(default=120, ge=0)
    """A FloodWait up to this long is waited out; a longer one fails the channel."""
    batch_size: int = Field(default=500, ge=1)
    """Messages per lake file (and per high-water-mark step)."""
    first_run_limit: int = Field(default=1000, ge=1)
    """Newest messages fetched on a channel's first scrape when --since is not given."""
    download_photos: bool = True
    export_max_photo_bytes: int = Field(default=DEFAULT_MAX_PHOTO_BYTES, ge=1)
    """A photo of a Telegram Desktop export larger than this is not copied into the lake
    (the message is kept without it): an export is untrusted input."""
