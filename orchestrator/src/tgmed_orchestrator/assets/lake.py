"""The lake: Telegram messages and photos (the scrape stage), partitioned by channel
(dynamic partitions `channels`, see planning.py), YOLO detections (the detect stage),
which work on shards of every pending photo and are one asset without partitions
(docs/architecture.md says why), and what post texts name (the extract stage: every
message file not yet read by the current extractor and knowledge base).

A run for a set of channel partitions runs ONE scrape process for all of them (one
Telegram session: Telegram revokes a key used from two places at once); Telegram
Desktop exports fan out, one import per channel, run side by side. A run with no
partition plans its channels (planning.py), registers new ones as partitions and
records one materialization per channel besides the run's own."""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    asset,
    multi_asset,
)

from tgmed_orchestrator import stages
from tgmed_orchestrator.launchers import StageLauncher, StageRun
from tgmed_orchestrator.outcomes import failure, set_aside_metadata
from tgmed_orchestrator.planning import CHANNELS, ScrapeConfig, plan
from tgmed_orchestrator.settings import orchestrator_settings

MESSAGES = AssetKey(["lake", "telegram_messages"])
MEDIA = AssetKey(["lake", "telegram_media"])
DETECTIONS = AssetKey(["lake", "yolo_detections"])
EXTRACTIONS = AssetKey(["lake", "message_extractions"])
GROUP = "lake"
PARALLEL_INVOCATIONS = 2  # exports and detection shards side by side (2 cores here)


def partition_keys(context: AssetExecutionContext) -> list[str] | None:
    """The run's channel partitions, None for a run with no partition."""
    if context.has_partition_key or context.has_partition_key_range:
        return list(context.partition_keys)
    return None


def launch_all(
    context: AssetExecutionContext,
    launcher: StageLauncher,
    commands: list[stages.StageCommand],
    partial_ok: bool = False,
) -> list[StageRun]:
    """Every command (side by side up to PARALLEL_INVOCATIONS); the first failure that
    must not be retried wins over a retriable one. `partial_ok`: a run that set input
    aside is not a failure here (the caller materializes what went through and says what
    was set aside; the check `nothing_set_aside` fails the run)."""
    if len(commands) == 1:
        runs = [launcher.launch(context, commands[0])]
    else:
        with ThreadPoolExecutor(max_workers=PARALLEL_INVOCATIONS) as pool:
            runs = list(pool.map(lambda command: launcher.launch(context, command), commands))
    failures = [
        failure(run) for run in runs if not run.succeeded and not (partial_ok and run.partial)
    ]
    if failures:
        final = next((f for f in failures if not f.allow_retries), failures[0])
        if len(failures) > 1:
            final = Failure(
                description=f"{len(failures)} of {len(runs)} invocations failed:\n"
                + "\n\n".join(f.description or "" for f in failures),
                metadata=final.metadata,
                allow_retries=final.allow_retries,
            )
        raise final
    return runs


CHANNEL_NUMBERS = ("messages", "read", "refreshed", "photos", "files", "already_imported")


def channel_numbers(counts: dict[str, float]) -> dict[str, Any]:
    return {key: counts[key] for key in CHANNEL_NUMBERS if key in counts}


def total(runs: list[StageRun], name: str) -> float:
    """A count summed over the runs' reports."""
    return sum(run.report.counts.get(name, 0) for run in runs)


@multi_asset(
    name="telegram_lake",
    specs=[
        AssetSpec(
            MESSAGES,
            group_name=GROUP,
            description="Telegram posts in the lake: raw/telegram_messages/date=/channel=/"
            "*.jsonl, one MessageRecord per line, written by tgmed-scraper (scrape or "
            "import-export).",
            kinds={"python", "file"},
        ),
        AssetSpec(
            MEDIA,
            group_name=GROUP,
            description="Photos of those posts: raw/telegram_media/channel=/<message_id>.jpg.",
            kinds={"file"},
        ),
    ],
    partitions_def=CHANNELS,
    backfill_policy=BackfillPolicy.single_run(),
    op_tags={"tgmed/stage": "scrape"},
)
def telegram_lake(context: AssetExecutionContext, config: ScrapeConfig, launcher: StageLauncher):
    partitions = partition_keys(context)
    planned = plan(orchestrator_settings(), config, partitions)
    if partitions is None:
        known = set(context.instance.get_dynamic_partitions(CHANNELS.name))
        new = [name for name in planned.channels if name not in known]
        if new:
            context.instance.add_dynamic_partitions(CHANNELS.name, new)
            context.log.info(f"new channel partitions: {', '.join(new)}")
    context.log.info(
        f"{len(planned.channels)} channels from {planned.source}: {', '.join(planned.channels)}"
    )
    if planned.source == "telegram":
        [run] = launch_all(
            context, launcher, [stages.scrape_telegram(planned.channels)], partial_ok=True
        )
        per_channel = run.report.channels
        runs = [run]
    else:
        commands = [
            stages.scrape_export(
                launcher.export_path(str(planned.export_root), planned.folders[name]), name
            )
            for name in planned.channels
        ]
        runs = launch_all(context, launcher, commands, partial_ok=True)
        per_channel = {
            name: run.report.counts for name, run in zip(planned.channels, runs, strict=True)
        }
    if partitions is None:  # the run has no partition: say what each channel got
        for name in planned.channels:
            numbers = channel_numbers(per_channel.get(name) or {})
            yield AssetMaterialization(
                asset_key=MESSAGES, partition=name, metadata={"source": planned.source, **numbers}
            )
            yield AssetMaterialization(
                asset_key=MEDIA, partition=name, metadata={"photos": numbers.get("photos", 0)}
            )
    # the run's totals: each invocation's report (one scrape, or one import per channel)
    totals = {
        key: int(total(runs, key))
        for key in ("messages", "already_imported", "read", "photos", "photo_errors", "files")
    }
    seconds = round(max(run.seconds for run in runs), 3)
    yield MaterializeResult(
        asset_key=MESSAGES,
        metadata={
            "channels": len(planned.channels),
            "messages_written": totals["messages"],
            "messages_already_in_lake": totals["already_imported"],
            "files_written": totals["files"],
            "seconds": seconds,
            "source": planned.source,
            **set_aside_metadata(runs),
            **{
                f"messages.{name}": (per_channel.get(name) or {}).get("messages", 0) or 0
                for name in planned.channels
            },
        },
    )
    yield MaterializeResult(
        asset_key=MEDIA,
        metadata={
            "photos_written": totals["photos"],
            "photo_errors": totals["photo_errors"],
            "seconds": seconds,
        },
    )


class DetectConfig(Config):
    shards: int | None = None  # default TGMED_DETECT_SHARDS


DETECT_NUMBERS = ("images", "failed", "objects", "already_done", "files")


@asset(
    key=DETECTIONS,
    deps=[MEDIA],
    group_name=GROUP,
    description="YOLO detections of the lake's photos: raw/yolo_detections/date=/channel=/"
    "*.jsonl, one DetectionRecord per image (also when nothing was found), written by "
    "tgmed-yolo detect, sharded (TGMED_DETECT_SHARDS invocations side by side). Every "
    "photo not yet detected by the current model is processed, whichever channel: a "
    "channel's backfill detects what it added, since nothing else is pending.",
    kinds={"python", "pytorch"},
    op_tags={"tgmed/stage": "detect"},
)
def yolo_detections(
    context: AssetExecutionContext, config: DetectConfig, launcher: StageLauncher
) -> MaterializeResult:
    shards = config.shards or orchestrator_settings().detect_shards
    if shards < 1:
        raise Failure(
            description=f"detect shards must be at least 1, not {shards}", allow_retries=False
        )
    runs = launch_all(context, launcher, [stages.detect(i, shards) for i in range(shards)])
    totals = {key: total(runs, key) for key in DETECT_NUMBERS}
    seconds = max(run.seconds for run in runs)
    first = runs[0].report.facts
    return MaterializeResult(
        metadata={
            "images_detected": totals["images"],
            "images_failed": totals["failed"],
            "objects": totals["objects"],
            "images_already_done": totals["already_done"],
            "files_written": totals["files"],
            "shards": shards,
            "seconds": round(seconds, 3),
            "images_per_second": round(totals["images"] / seconds, 2) if seconds else 0,
            "model": str(first.get("model", "")),
            "device": str(first.get("device", "")),
            **{
                f"shard_{i}.{k}": v
                for i, run in enumerate(runs)
                for k, v in run.report.counts.items()
                if k in DETECT_NUMBERS
            },
        }
    )


EXTRACT_NUMBERS = (
    "files",
    "already_done",
    "messages",
    "extracted",
    "reused",
    "remembered",
    "with_products",
    "mentions",
    "prices",
    "services",
    "candidates",
    "skipped",
    "workers",
    "messages_per_second",
)


@asset(
    key=EXTRACTIONS,
    deps=[MESSAGES],
    group_name=GROUP,
    description="What each post's text names: raw/message_extractions/date=/channel=/"
    "<message file>-<version>.jsonl, one ExtractionRecord per message (products, prices "
    "with their variants and currency, service fees, candidate products), written by "
    "tgmed-extract run. Versioned: a changed catalog or extractor is a new version tag, "
    "and every message file is read again (the raw tables are not reloaded).",
    kinds={"python"},
    op_tags={"tgmed/stage": "extract"},
)
def message_extractions(context: AssetExecutionContext, launcher: StageLauncher):
    (run,) = launch_all(context, launcher, [stages.extract()], partial_ok=True)
    numbers = {key: run.report.counts.get(key, 0) for key in EXTRACT_NUMBERS}
    return MaterializeResult(
        metadata={
            **numbers,
            "version": run.report.facts.get("version", ""),
            "seconds": round(run.seconds, 3),
            **set_aside_metadata([run]),
        }
    )
