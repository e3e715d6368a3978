"""Loader configuration, from the environment (see .env.example)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config


class DatabaseSettings(BaseSettings):
    model_config = env_config()

    database_url: SecretStr
    """postgresql://user:password@host:port/database (a secret: it holds the password)."""


class LoaderSettings(BaseSettings):
    model_config = env_config("LOADER_")

    workers: int = Field(default=2, ge=1, le=32)
    """Files loaded at the same time (one process and one connection each)."""


class ApiRoleSettings(BaseSettings):
    """The read-only role the API connects with (created by `tgmed-loader init-db`)."""

    model_config = env_config("API_DB_")

    user: str = Field(default="tgmed_api", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    password: SecretStr | None = None
