"""Extraction configuration, from the environment (see .env.example)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config


class ExtractSettings(BaseSettings):
    model_config = env_config("EXTRACT_")

    workers: int = Field(default=0, ge=0)
    """Processes extracting side by side: 0 is one per core (fewer for a small backlog:
    a process spends ~1.5 s building the knowledge base)."""
