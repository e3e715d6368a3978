"""The jobs: the same names and meaning as ever, now selections of assets (the
`launcher` resource decides how each stage runs). Every stage step is retried by
`stage_retry_policy()` when the stage says its failure was transient (outcomes.py)."""

from __future__ import annotations

from dagster import AssetSelection, Backoff, Jitter, RetryPolicy, define_asset_job, job

from tgmed_orchestrator.assets.dbt import dbt_models
from tgmed_orchestrator.assets.lake import DETECTIONS, EXTRACTIONS, MEDIA, MESSAGES
from tgmed_orchestrator.assets.monitoring import HEALTH
from tgmed_orchestrator.assets.raw import RAW_DETECTIONS, RAW_EXTRACTIONS, RAW_TELEGRAM
from tgmed_orchestrator.maintenance import cleanup_op
from tgmed_orchestrator.settings import orchestrator_settings


def stage_retry_policy() -> RetryPolicy:
    """TGMED_STAGE_RETRIES (default 2) more attempts, TGMED_STAGE_RETRY_DELAY_SECONDS
    (default 30) before the first, doubling after each (read through the settings
    class, so `.env` counts too)."""
    settings = orchestrator_settings()
    return RetryPolicy(
        max_retries=settings.stage_retries,
        delay=settings.stage_retry_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


STAGE_RETRY_POLICY = stage_retry_policy()
# jobs that write the warehouse run one at a time (dagster.yaml limits this tag to one
# run); dbt's incremental models are kept correct by their own lookback as well
WAREHOUSE_TAGS = {"tgmed/warehouse": "write"}

LAKE = AssetSelection.assets(MESSAGES, MEDIA, DETECTIONS, EXTRACTIONS)
RAW = AssetSelection.assets(*RAW_TELEGRAM, RAW_DETECTIONS, RAW_EXTRACTIONS)
# every model and seed of the dbt project, whatever folder (group) it lives in, and every
# dbt test: those on sources are checks on the raw tables, which a dbt-only job does not
# materialize but whose tests it runs (one whole `dbt build`, no subset)
DBT = AssetSelection.assets(*dbt_models.keys) | AssetSelection.checks(*dbt_models.check_keys)

telegram_pipeline = define_asset_job(
    "telegram_pipeline",
    selection=LAKE | RAW | DBT,
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="scrape (one process for all Telegram channels; exports one per channel) "
    "-> detect (per shard), extract and load messages -> load detections and extractions "
    "-> dbt build. With "
    "channel partitions chosen: just those channels.",
)
scrape_and_load = define_asset_job(
    "scrape_and_load",
    selection=AssetSelection.assets(MESSAGES, MEDIA, *RAW_TELEGRAM),
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="scrape, load messages",
)
transform = define_asset_job(
    "transform",
    selection=DBT,
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="dbt build only (every model and test)",
)
enrich = define_asset_job(
    "enrich",
    selection=AssetSelection.assets(DETECTIONS, RAW_DETECTIONS, EXTRACTIONS, RAW_EXTRACTIONS),
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="detect and extract, load detections and extractions (after a new model or "
    "catalog: re-extracts every message, without reloading them)",
)
load_lake = define_asset_job(
    "load_lake",
    selection=AssetSelection.assets(EXTRACTIONS) | RAW | DBT,
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="extract new messages, load new lake files (messages, detections, "
    "extractions), then dbt build",
)
pipeline_health = define_asset_job(
    "pipeline_health",
    selection=AssetSelection.assets(HEALTH),
    description="row counts, freshness, failed runs, quarantine against thresholds; alerts",
)


@job(
    op_retry_policy=STAGE_RETRY_POLICY,
    description="old quarantine entries, orphaned temp files, finished stage containers",
)
def cleanup():
    cleanup_op()


JOBS = [telegram_pipeline, scrape_and_load, transform, enrich, load_lake, pipeline_health, cleanup]
