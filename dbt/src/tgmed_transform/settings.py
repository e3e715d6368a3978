"""The transform stage's settings (its own module: the CLI, the lineage writer and the
report all read them, and none of them imports another for it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config


class TransformSettings(BaseSettings):
    model_config = env_config()

    database_url: SecretStr
    dbt_project_dir: Path = Path(__file__).resolve().parents[2]
    transform_publish_docs: bool = True
    """TRANSFORM_PUBLISH_DOCS: after a successful build, generate the dbt docs site and
    publish it into the warehouse for the API's /dbt-docs/."""
