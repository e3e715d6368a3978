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

    @field_validator("database_url")
    @classmethod
    def _a_postgres_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL of the read-only role (see .env.example)")
        return value
