"""The jobs. One graph of stage ops, launched the same way in every mode (the
`launcher` resource decides how). Every job retries its ops by `STAGE_RETRY_POLICY`
(see ops.py for which failures are not retried)."""

from __future__ import annotations

import os

from dagster import Backoff, Jitter, RetryPolicy, job

from tgmed_orchestrator.maintenance import cleanup_op, pipeline_health_op
from tgmed_orchestrator.ops import (
    detect_op,
    init_db_op,
    load_detections_op,
    load_messages_op,
    plan_detect_op,
    plan_scrape_op,
    scrape_op,
    transform_op,
)


def stage_retry_policy() -> RetryPolicy:
    """TGMED_STAGE_RETRIES (default 2) more attempts, TGMED_STAGE_RETRY_DELAY_SECONDS
    (default 30) before the first, doubling after each."""
    return RetryPolicy(
        max_retries=int(os.environ.get("TGMED_STAGE_RETRIES", "2")),
        delay=float(os.environ.get("TGMED_STAGE_RETRY_DELAY_SECONDS", "30")),
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


STAGE_RETRY_POLICY = stage_retry_policy()
# jobs that write the warehouse never run at the same time (dagster.yaml limits this
# tag to one run): dbt's incremental models must not miss rows loaded during a build
WAREHOUSE_TAGS = {"tgmed/warehouse": "write"}


@job(
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="scrape (per channel) -> detect (per shard) and load messages -> "
    "load detections -> dbt build",
)
def telegram_pipeline():
    scraped = plan_scrape_op().map(scrape_op).collect()
    ready = init_db_op()
    messages = load_messages_op(scraped=scraped, ready=ready)
    detected = plan_detect_op(scraped=scraped).map(detect_op).collect()
    detections = load_detections_op(detected=detected, after=messages)
    transform_op(after=detections)


@job(tags=WAREHOUSE_TAGS, op_retry_policy=STAGE_RETRY_POLICY, description="scrape, load messages")
def scrape_and_load():
    scraped = plan_scrape_op().map(scrape_op).collect()
    load_messages_op(scraped=scraped, ready=init_db_op())


@job(tags=WAREHOUSE_TAGS, op_retry_policy=STAGE_RETRY_POLICY, description="dbt build only")
def transform():
    transform_op()


@job(tags=WAREHOUSE_TAGS, op_retry_policy=STAGE_RETRY_POLICY, description="detect, load detections")
def enrich():
    detected = plan_detect_op().map(detect_op).collect()
    load_detections_op(detected=detected, after=init_db_op())


@job(
    tags=WAREHOUSE_TAGS,
    op_retry_policy=STAGE_RETRY_POLICY,
    description="load new lake files (messages, then detections), then dbt build",
)
def load_lake():
    messages = load_messages_op(ready=init_db_op())
    transform_op(after=load_detections_op(after=messages))


@job(description="row counts, freshness, failed runs, quarantine against thresholds; alerts")
def pipeline_health():
    pipeline_health_op()


@job(
    op_retry_policy=STAGE_RETRY_POLICY,
    description="old quarantine entries, orphaned temp files, finished stage containers",
)
def cleanup():
    cleanup_op()


JOBS = [telegram_pipeline, scrape_and_load, transform, enrich, load_lake, pipeline_health, cleanup]
