"""Scraper configuration, all from the environment (see .env.example)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config
from tgmed_scraper.export_files import DEFAULT_MAX_EXPORT_BYTES, DEFAULT_MAX_PHOTO_BYTES


class TelegramAppSettings(BaseSettings):
    """The API application (my.telegram.org): enough to log in. The server override is
    off by default: Telegram's own data centres."""

    model_config = env_config("TELEGRAM_")

    api_id: int
    api_hash: SecretStr
    server: str | None = None
    """host:port of another MTProto server (Telegram's test servers, a local server)."""
    server_dc_id: int = Field(default=2, ge=1, le=1000)
    """The data centre id of TELEGRAM_SERVER."""
    server_public_key: str | None = None
    """TELEGRAM_SERVER's RSA public key (a PEM file's path, or the PEM text): needed to
    log in there the first time, when the session has no authorization key yet."""

    # compose passes every name it knows, empty when unused: empty means unset
    @field_validator("server", "server_public_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("server_dc_id", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return 2 if isinstance(value, str) and not value.strip() else value


class TelegramSettings(TelegramAppSettings):
    """A logged-in session as well (the StringSession printed by `login`)."""

    session: SecretStr


class ScraperSettings(BaseSettings):
    model_config = env_config("SCRAPER_")

    concurrency: int = Field(default=4, ge=1, le=32)
    """Channels scraped at the same time."""
    flood_wait_max_seconds: int = Field(default=120, ge=0)
    flood_wait_total_seconds: int = Field(default=600, ge=0)
    """All the FloodWaits one channel waits out in one run, at most: past it the channel
    stops (what it fetched is saved) and says until when Telegram asks it to wait."""
    """A FloodWait up to this long is waited out; a longer one fails the channel."""
    batch_size: int = Field(default=500, ge=1)
    """Messages per lake file (and per high-water-mark step)."""
    first_run_limit: int = Field(default=1000, ge=1)
    """Newest messages fetched on a channel's first scrape when --since is not given."""
    download_photos: bool = True
    export_max_photo_bytes: int = Field(default=DEFAULT_MAX_PHOTO_BYTES, ge=1)
    """A photo of a Telegram Desktop export larger than this is not copied into the lake
    (the message is kept without it): an export is untrusted input."""
    export_max_bytes: int = Field(default=DEFAULT_MAX_EXPORT_BYTES, ge=1)
    """An export's result.json larger than this is refused (not read, not copied into
    quarantine): it is read one message at a time, its records held until written."""
    refresh_days: int = Field(default=7, ge=0, le=366)
    """Each scrape also re-reads the posts of the last N days (their views, forwards,
    replies and reactions keep growing); 0 turns the refresh off."""
    request_timeout_seconds: float = Field(default=60, gt=0)
    """Longest wait for any one answer from Telegram (connecting, a page of messages,
    a photo) before the channel fails as a transient failure."""
    channel_timeout_seconds: float = Field(default=3600, gt=0)
    """Longest time one channel may take, everything included."""
