"""The orchestrator's configuration, read from the environment (or `.env`) with the
project's one settings pattern. Read when a run, sensor or schedule evaluates, never at
import time, so a code location loads even where a variable is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config, load_settings

LaunchMode = Literal["local", "docker", "k8s"]


class OrchestratorSettings(BaseSettings):
    """TGMED_* variables: how stages are launched and what the pipeline reads. An empty
    variable means its default (compose passes every name on, empty when unset)."""

    model_config = {**env_config("TGMED_"), "env_ignore_empty": True}

    launch_mode: LaunchMode = "local"
    # where scrape reads: the Telegram API (Telethon) or Telegram Desktop exports
    scrape_source: Literal["telegram", "export"] = "telegram"
    # the channels a run scrapes when its configuration names none: this file, or when
    # unset the list shipped in tgmed_common (default_channels.txt = config/channels.txt),
    # which exists in every mode (a laptop, a run container, a pod)
    channels_file: Path | None = None
    # one folder per channel (data/sample/exports after `make sample`)
    export_root: Path = Path("data/sample/exports")
    detect_shards: int = 1
    # stage retries (only transient failures are retried: see outcomes.py)
    stage_retries: int = 2
    stage_retry_delay_seconds: float = 30.0
    # every stage invocation is stopped after this long, in every mode (a hung stage
    # must not hold the warehouse slot forever); per stage: {"detect": 7200}
    stage_timeout_seconds: float = 3600.0
    stage_timeouts: dict[str, float] = {}
    # local mode: bin folders of stage environments (the yolo stage has its own)
    yolo_bin: str | None = None
    # docker and k8s modes: images tgmed-<stage>:<image_tag>, or one named per stage
    image_tag: str = "latest"
    image_scrape: str | None = None
    image_detect: str | None = None
    image_extract: str | None = None
    image_load: str | None = None
    image_transform: str | None = None
    gpu_stages: str = ""  # comma-separated, e.g. "detect"
    docker_network: str = "tgmed"
    docker_lake_volume: str = "tgmed-lake"
    docker_exports_volume: str | None = None
    docker_models_volume: str | None = None
    # memory limit per stage container: "detect=4g,load=1g" (none by default)
    docker_stage_memory: str = ""
    k8s_namespace: str = "tgmed"
    # the PodTemplate of the stage pods (k8s/base/stage-pod.yaml)
    k8s_stage_pod_template: str = "tgmed-stage"
    k8s_exports_claim: str | None = None
    k8s_models_claim: str | None = None
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # JSON: the GPU node pool's labels and taints, for the stages in TGMED_GPU_STAGES
    k8s_gpu_node_selector: dict[str, str] = {}
    k8s_gpu_tolerations: list[dict[str, Any]] = []
    # JSON: per stage requests/limits replacing the defaults (launchers.K8S_STAGE_RESOURCES)
    k8s_stage_resources: dict[str, dict[str, dict[str, str]]] = {}


class AlertSettings(BaseSettings):
    """ALERT_* variables; neither channel is required (no alert is sent then)."""

    model_config = env_config("ALERT_")

    # a generic JSON webhook (Slack-compatible `text` field plus structured fields)
    webhook_url: SecretStr | None = None
    # Telegram Bot API: the bot's token and the chat that receives alerts
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    # where a person opens the run (the Dagster UI), for links in alerts
    dagster_ui_url: str = "http://127.0.0.1:3000"
    telegram_api_url: str = "https://api.telegram.org"
    timeout_seconds: float = 10.0


class HealthSettings(BaseSettings):
    """HEALTH_* thresholds of the pipeline health check."""

    model_config = env_config("HEALTH_")

    min_messages: int = 1
    # also the threshold of the freshness check on raw/telegram_messages (per channel)
    max_post_age_hours: float = 48.0
    max_failed_runs_per_day: int = 0
    max_quarantined_files: int = 0


class CleanupSettings(BaseSettings):
    model_config = env_config("CLEANUP_")

    quarantine_days: int = 30
    temp_hours: float = 24.0


def orchestrator_settings() -> OrchestratorSettings:
    return load_settings(OrchestratorSettings)


def alert_settings() -> AlertSettings:
    return load_settings(AlertSettings)


class WarehouseSettings(BaseSettings):
    """The warehouse the health check reads (the stages read the same variable)."""

    model_config = env_config()

    database_url: SecretStr
    lake_dir: Path = Path("data/lake")
