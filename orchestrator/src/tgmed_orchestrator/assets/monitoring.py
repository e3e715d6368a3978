"""The pipeline's health as an asset: row counts, the newest post, failed runs and
quarantined files, as numeric metadata on each materialization (the UI plots them over
time), checked against HEALTH_* thresholds; problems are alerted."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from tgmed_common.lake import Lake
from tgmed_common.settings import load_settings
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.assets.raw import RAW_DETECTIONS, RAW_MESSAGES
from tgmed_orchestrator.maintenance import failed_runs_since, health_problems, warehouse_counts
from tgmed_orchestrator.settings import HealthSettings, WarehouseSettings

HEALTH = AssetKey(["monitoring", "pipeline_health"])


@asset(
    key=HEALTH,
    deps=[RAW_MESSAGES, RAW_DETECTIONS, AssetKey(["marts", "fct_messages"])],
    group_name="monitoring",
    description="Row counts, the newest post's age, failed runs of the last day and "
    "quarantined files, against HEALTH_* thresholds (problems are alerted). Its history "
    "is the metadata plots of this asset.",
    kinds={"python"},
)
def pipeline_health(context: AssetExecutionContext, alerter: Alerter) -> MaterializeResult:
    thresholds = load_settings(HealthSettings)
    warehouse = load_settings(WarehouseSettings)
    now = datetime.now(UTC)
    counts, newest = warehouse_counts(warehouse.database_url.get_secret_value())
    failed = failed_runs_since(context, now - timedelta(days=1))
    quarantined = len(Lake(warehouse.lake_dir).quarantined())
    problems = health_problems(thresholds, counts, newest, failed, quarantined, now)
    metadata: dict[str, Any] = {
        f"rows.{name}": count for name, count in counts.items() if count is not None
    }
    metadata.update(
        {
            "healthy": MetadataValue.bool(not problems),
            "problems_found": len(problems),
            "newest_post_age_hours": round((now - newest).total_seconds() / 3600, 2)
            if newest
            else -1.0,
            "newest_post": MetadataValue.text(newest.isoformat() if newest else "none"),
            "failed_runs_last_day": len(failed),
            "quarantined_files": quarantined,
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        }
    )
    if problems:
        for problem in problems:
            context.log.warning(f"health: {problem}")
        sent = alerter.send(
            "tgmed: pipeline health check found problems",
            "\n".join(f"- {p}" for p in problems),
            {"check": "pipeline_health", "run_id": context.run.run_id},
        )
        metadata["alerted"] = MetadataValue.text(", ".join(sent) or "no alert channel configured")
    else:
        context.log.info("health: all checks within thresholds")
    return MaterializeResult(metadata=metadata)
