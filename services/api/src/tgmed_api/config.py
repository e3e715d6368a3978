"""API configuration, from the environment (see .env.example)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config


class ApiSettings(BaseSettings):
    model_config = env_config("API_")

    database_url: SecretStr
    """API_DATABASE_URL: the read-only role's URL (`tgmed-loader init-db` creates the role
    API_DB_USER); a secret, it holds the password."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    pool_min_size: int = Field(default=2, ge=1, le=100)
    pool_max_size: int = Field(default=8, ge=1, le=100)
    pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long a request waits for a connection before it is answered 503."""
    statement_timeout_ms: int = Field(default=5000, ge=100, le=600_000)
    """A query running longer is cancelled and answered 503, so one heavy request cannot
    hold a connection for ever."""
    cache_size: int = Field(default=512, ge=0, le=100_000)
    """Answers kept in memory per process (0: no cache)."""
    cache_check_seconds: float = Field(default=5.0, ge=0, le=3600)
    """How often the marts' build version is read; a new build empties the cache."""
    log_level: str = "INFO"

    auth: bool = True
    """API_AUTH: every route but /health, /ready and /signin needs an API key
    (`tgmed-loader keys create`). `false` only where nobody else can connect (the
    benchmark's baseline): every answer is then open to anyone who reaches the port."""
    rate_limit: int = Field(default=600, ge=1, le=1_000_000)
    """Requests per key per API_RATE_WINDOW_SECONDS (per API process), unless the key
    has its own limit; past it, 429 with Retry-After."""
    rate_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    key_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    """How long a checked key is remembered: a revoked key is refused within this time."""
    max_body_bytes: int = Field(default=16_384, ge=1024, le=10_000_000)
    """Larger request bodies get 413 (the API reads only the sign-in form)."""
    max_range_days: int = Field(default=184, ge=1, le=36_500)
    """A `from`/`to` filter spans at most this many days (422 past it); no dates at all
    is the whole history, the cached default view."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90)
    """How long the dashboard's sign-in cookie lasts."""
    access_log: bool = True
    """One line per request: method, path, status, time, and the key's name and id."""

    @field_validator("database_url")
    @classmethod
    def _a_postgres_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL of the read-only role (see .env.example)")
        return value
