"""The one settings pattern: pydantic-settings classes read from the environment (and
`.env` when present). Secrets are `SecretStr` with no default; `load_settings` turns a
missing or bad variable into one clear message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class ConfigError(RuntimeError):
    """Configuration is missing or invalid; the message says which variable and what to do."""


def env_config(prefix: str = "") -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


class LakeSettings(BaseSettings):
    model_config = env_config()

    lake_dir: Path = Path("data/lake")


def load_settings(cls: type[S], **overrides: object) -> S:
    try:
        return cls(**overrides)
    except ValidationError as error:
        prefix = cls.model_config.get("env_prefix", "") or ""
        problems = []
        for item in error.errors(include_url=False):
            name = (prefix + "_".join(str(p) for p in item["loc"])).upper()
            problems.append(f"{name}: {item['msg']}")
        raise ConfigError(
            "configuration problem: "
            + "; ".join(problems)
            + " (set it in the environment or in .env; .env.example lists every variable)"
        ) from None


def secret_values(*settings: BaseSettings) -> list[str]:
    """Every secret value held by these settings, for log redaction."""
    found = []
    for item in settings:
        for name in type(item).model_fields:
            value = getattr(item, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
    return found
