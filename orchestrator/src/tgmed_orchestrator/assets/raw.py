"""The raw tables, loaded from the lake by the loader stage (COPY, idempotent, newest
scrape wins), each with its checks: `no_quarantined_files` (reported by the loader:
every file it set aside, with the line and the reason) and, on the messages, the
freshness of the newest post per channel (threshold HEALTH_MAX_POST_AGE_HOURS)."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import time
from datetime import UTC, datetime

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    multi_asset,
)

from tgmed_common.settings import load_settings
from tgmed_orchestrator import stages
from tgmed_orchestrator.assets.lake import DETECTIONS, EXTRACTIONS, MEDIA, MESSAGES
from tgmed_orchestrator.launchers import StageLauncher, StageRun
from tgmed_orchestrator.outcomes import (
    check,
    failure,
    report_metadata,
    reported,
    set_aside_metadata,
)
from tgmed_orchestrator.settings import HealthSettings, WarehouseSettings

RAW_MESSAGES = AssetKey(["raw", "telegram_messages"])
RAW_OBSERVATIONS = AssetKey(["raw", "telegram_message_observations"])
RAW_SNAPSHOTS = AssetKey(["raw", "telegram_channel_snapshots"])
RAW_TELEGRAM = (RAW_MESSAGES, RAW_OBSERVATIONS, RAW_SNAPSHOTS)
RAW_DETECTIONS = AssetKey(["raw", "yolo_detections"])
RAW_EXTRACTIONS = AssetKey(["raw", "message_extractions"])
GROUP = "raw"
QUARANTINE_CHECK = "no_quarantined_files"  # the loader's name (tgmed_loader/report.py)
# a time (ns, the lake's clock: file ctimes) before the loader listed the lake: every file
# published before it was loaded or set aside by this materialization (the lake sensor
# reads it, so the pipeline's own files do not start another load)
LISTED_AT = "lake_listed_at_ns"


def load(
    context: AssetExecutionContext, launcher: StageLauncher, stream: str, keys: tuple[AssetKey, ...]
):
    """init-db (idempotent: a fresh database works on the first run), then the load;
    what the loader reported (a materialization and a quarantine check per table). Files
    set aside do not fail the step (the rest was loaded and goes on to dbt): the first
    table's materialization says what was set aside, and the check `nothing_set_aside`
    fails the run."""
    check(launcher.launch(context, stages.init_db()))
    listed_at = time.time_ns()
    run = launcher.launch(context, stages.load(stream))
    # what a partial load set aside goes on the first table's materialization
    set_aside = set_aside_metadata([run]) if run.partial else {}

    def ours(key: AssetKey) -> dict:
        return {LISTED_AT: listed_at, **(set_aside if key == keys[0] else {})}

    results = [
        MaterializeResult(
            asset_key=r.asset_key,
            metadata={**(r.metadata or {}), **ours(r.asset_key)},
            data_version=r.data_version,
        )
        if isinstance(r, MaterializeResult)
        else r
        for r in reported(context, run)
    ]
    if run.succeeded or run.partial:
        materialized = {r.asset_key for r in results if isinstance(r, MaterializeResult)}
        checked = {r.asset_key for r in results if isinstance(r, AssetCheckResult)}
        for key in keys:
            if key not in materialized:
                metadata = {**fallback(run), **ours(key)}
                results.insert(0, MaterializeResult(asset_key=key, metadata=metadata))
            if key not in checked:
                results.append(
                    AssetCheckResult(
                        asset_key=key,
                        check_name=QUARANTINE_CHECK,
                        passed=not run.report.set_aside_total,
                        metadata={"files_quarantined": run.report.set_aside_total},
                    )
                )
    yield from results
    if not run.succeeded and not run.partial:
        raise failure(run)


def fallback(run: StageRun) -> dict:
    """The report's counts, when the stage could not report a materialization."""
    return {**report_metadata(run.report), "seconds": round(run.seconds, 3)}


def quarantine_check(key: AssetKey, what: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        QUARANTINE_CHECK,
        asset=key,
        description=f"No {what} file was set aside by the load (quarantine/, with the "
        "line and the reason).",
    )


@multi_asset(
    name="raw_telegram",
    specs=[
        AssetSpec(
            RAW_MESSAGES,
            deps=[MESSAGES, MEDIA],
            group_name=GROUP,
            description="raw.telegram_messages in PostgreSQL: one row per (channel, message "
            "id), the record as JSONB; a newer scrape replaces an older one.",
            kinds={"postgres"},
        ),
        AssetSpec(
            RAW_OBSERVATIONS,
            deps=[MESSAGES],
            group_name=GROUP,
            description="raw.telegram_message_observations: one row per reading of a post's "
            "counts (channel, message id, time read).",
            kinds={"postgres"},
        ),
        AssetSpec(
            RAW_SNAPSHOTS,
            deps=[MESSAGES],
            group_name=GROUP,
            description="raw.telegram_channel_snapshots: the channel (subscribers, title) "
            "per scrape.",
            kinds={"postgres"},
        ),
    ],
    check_specs=[
        quarantine_check(RAW_MESSAGES, "message"),
        quarantine_check(RAW_OBSERVATIONS, "observation"),
        quarantine_check(RAW_SNAPSHOTS, "channel snapshot"),
    ],
    op_tags={"tgmed/stage": "load"},
)
def raw_telegram(context: AssetExecutionContext, launcher: StageLauncher):
    """tgmed-loader load telegram: what the scraper writes, the three tables in one step."""
    yield from load(context, launcher, "telegram", RAW_TELEGRAM)


@asset(
    key=RAW_DETECTIONS,
    deps=[DETECTIONS],
    group_name=GROUP,
    description="raw.yolo_detections in PostgreSQL: one row per (channel, message id, model "
    "hash) (tgmed-loader load detections).",
    check_specs=[
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset=RAW_DETECTIONS,
            description="No detection file was set aside by the load.",
        )
    ],
    kinds={"postgres"},
    op_tags={"tgmed/stage": "load"},
)
def raw_yolo_detections(context: AssetExecutionContext, launcher: StageLauncher):
    yield from load(context, launcher, "detections", (RAW_DETECTIONS,))


@asset(
    key=RAW_EXTRACTIONS,
    deps=[EXTRACTIONS],
    group_name=GROUP,
    description="raw.message_extractions in PostgreSQL: one row per (channel, message id, "
    "extractor version), the newest scrape's (tgmed-loader load extractions).",
    check_specs=[
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset=RAW_EXTRACTIONS,
            description="No extraction file was set aside by the load.",
        )
    ],
    kinds={"postgres"},
    op_tags={"tgmed/stage": "load"},
)
def raw_message_extractions(context: AssetExecutionContext, launcher: StageLauncher):
    yield from load(context, launcher, "extractions", (RAW_EXTRACTIONS,))


def newest_posts(url: str) -> dict[str, datetime]:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass('raw.telegram_messages')").fetchone()[0] is None:
            return {}
        rows = conn.execute(
            "select channel_username, max(message_date) from raw.telegram_messages group by 1"
        ).fetchall()
    return {channel: newest for channel, newest in rows}


@asset_check(
    asset=RAW_MESSAGES,
    name="newest_post_per_channel",
    description="Each channel's newest post is at most HEALTH_MAX_POST_AGE_HOURS old.",
    blocking=False,
)
def newest_post_per_channel(context: AssetCheckExecutionContext) -> AssetCheckResult:
    threshold = load_settings(HealthSettings).max_post_age_hours
    url = load_settings(WarehouseSettings).database_url.get_secret_value()
    now = datetime.now(UTC)
    ages = {
        channel: round((now - newest).total_seconds() / 3600, 1)
        for channel, newest in newest_posts(url).items()
    }
    stale = {channel: age for channel, age in ages.items() if age > threshold}
    return AssetCheckResult(
        passed=bool(ages) and not stale,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "threshold_hours": threshold,
            "channels": len(ages),
            "stale_channels": len(stale),
            "oldest_newest_post_hours": max(ages.values(), default=0.0),
            **{f"age_hours.{channel}": age for channel, age in sorted(ages.items())},
            "stale": MetadataValue.md(
                "\n".join(f"- {c}: newest post {a} h old" for c, a in sorted(stale.items()))
                or ("none" if ages else "no messages loaded")
            ),
        },
    )
