"""The pipeline's ops. Each stage op builds its stage's command and hands it to the
`launcher` resource; `finish` turns what the stage reported into Dagster's terms:

- exit 0: the step succeeds; the stage's JSON summary is the output's metadata.
- exit 2 (configuration or usage error): the step fails at once, no retry (a retry
  would fail the same way); the stage's own error text is the failure's message.
- exit 1 with a summary but no `error` (a partial result: a file quarantined, a
  channel failed): the step fails without retry, so the run fails and the failure
  sensor alerts someone; a retry would not bring the set-aside input back.
- exit 137 or 143 (killed from outside: `docker kill`, `kubectl delete`, the kernel's
  OOM killer): the step fails without retry; someone or something stopped the stage on
  purpose, or it ran out of memory and would again, so a person is alerted instead.
- anything else (the stage itself failed or crashed): the step fails and the job's
  RetryPolicy retries it with backoff.
"""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
import re
from pathlib import Path
from typing import Any

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Output,
    op,
)

from tgmed_orchestrator import stages
from tgmed_orchestrator.launchers import StageLauncher, StageResult
from tgmed_orchestrator.settings import orchestrator_settings
from tgmed_orchestrator.stages import StageCommand


def summary_metadata(summary: dict[str, Any] | None) -> dict[str, Any]:
    """Numbers of the summary as metadata entries (nested ones as `parent.child`), plus
    the whole summary as JSON."""
    metadata: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, bool):
            metadata[prefix] = MetadataValue.bool(value)
        elif isinstance(value, int | float):
            metadata[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)

    walk("", summary or {})
    if summary is not None:
        metadata["summary"] = MetadataValue.json(summary)
    return metadata


# exit codes of a process ended by a signal it did not choose (128 + signal)
KILLED = {137: "SIGKILL: docker kill, out of memory", 143: "SIGTERM: stopped"}


def finish(context: OpExecutionContext, command: StageCommand, result: StageResult) -> Output:
    metadata = {
        **summary_metadata(result.summary),
        "command": MetadataValue.text(command.display),
        "exit_code": result.exit_code if result.exit_code is not None else -1,
    }
    if result.exit_code == 0:
        return Output(result.summary or {}, metadata=metadata)
    error = (result.summary or {}).get("error")
    partial = result.exit_code == 1 and result.summary is not None and not error
    configuration = result.exit_code == 2
    killed = result.exit_code in KILLED
    if configuration:
        kind = "configuration error (not retried)"
    elif killed and result.reason:
        kind = f"killed: {result.reason} (not retried)"
    elif killed:
        kind = f"killed from outside ({KILLED[result.exit_code]}; not retried)"
    elif partial:
        kind = "partial result: some input was set aside (not retried)"
    else:
        kind = "stage failed"
    reason = error or _partial_reason(result.summary) or "no summary line"
    metadata["output_tail"] = MetadataValue.md(f"```\n{result.tail_text}\n```")
    raise Failure(
        description=(
            f"{command.display} exited with {result.exit_code}: {kind}: {reason}\n"
            f"--- last lines of the stage's output ---\n{result.tail_text}"
        ),
        metadata=metadata,
        allow_retries=not (configuration or partial or killed),
    )


def _partial_reason(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    parts = [
        f"{key}={value}"
        for key, value in summary.items()
        if key in {"quarantined", "failed", "failed_channels", "photo_errors"} and value
    ]
    return ", ".join(parts)


def run(context: OpExecutionContext, launcher: StageLauncher, command: StageCommand) -> Output:
    return finish(context, command, launcher.launch(context, command))


# --- scrape: one step per channel ------------------------------------------------------


class ScrapePlanConfig(Config):
    """Defaults from TGMED_SCRAPE_SOURCE, TGMED_CHANNELS_FILE, TGMED_EXPORT_ROOT."""

    source: str | None = None  # telegram | export
    channels: list[str] = []
    export_root: str | None = None


def _mapping_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name.lower()) or "_"


@op(out=DynamicOut(dict), description="The channels to scrape: one step each.")
def plan_scrape_op(context: OpExecutionContext, config: ScrapePlanConfig):
    settings = orchestrator_settings()
    source = config.source or settings.scrape_source
    if source == "export":
        root = Path(config.export_root or settings.export_root)
        folders = sorted(p for p in root.glob("*") if (p / "result.json").is_file())
        if not folders:
            raise Failure(
                description=f"no export folders (with result.json) under {root}; "
                "set TGMED_EXPORT_ROOT or run `make sample`",
                allow_retries=False,
            )
        items = [
            {"source": "export", "channel": p.name, "export_root": str(root), "folder": p.name}
            for p in folders
        ]
    elif source == "telegram":
        channels = config.channels or [
            line.strip()
            for line in settings.channels_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        items = [{"source": "telegram", "channel": name} for name in channels]
    else:
        raise Failure(description=f"unknown scrape source {source!r}: telegram or export")
    context.log.info(f"scraping {len(items)} channels from {source}")
    for item in items:
        yield DynamicOutput(item, mapping_key=_mapping_key(item["channel"]))


@op(description="Scrape one channel into the lake (tgmed-scraper).")
def scrape_op(context: OpExecutionContext, launcher: StageLauncher, item: dict) -> Output:
    if item["source"] == "export":
        path = launcher.export_path(item["export_root"], item["folder"])
        command = stages.scrape_export(path, item["channel"])
    else:
        command = stages.scrape_telegram(item["channel"])
    return run(context, launcher, command)


# --- detect: one step per shard -----------------------------------------------------


class DetectPlanConfig(Config):
    shards: int | None = None  # default TGMED_DETECT_SHARDS


@op(
    ins={"scraped": In(Nothing)},
    out=DynamicOut(dict),
    description="The detection shards: one step each.",
)
def plan_detect_op(context: OpExecutionContext, config: DetectPlanConfig):
    shards = config.shards or orchestrator_settings().detect_shards
    if shards < 1:
        raise Failure(description=f"detect shards must be at least 1, not {shards}")
    for shard in range(shards):
        yield DynamicOutput({"shard": shard, "shards": shards}, mapping_key=f"shard_{shard}")


@op(description="Detect objects in one shard of the lake's photos (tgmed-yolo).")
def detect_op(context: OpExecutionContext, launcher: StageLauncher, item: dict) -> Output:
    return run(context, launcher, stages.detect(item["shard"], item["shards"]))


# --- load and transform -----------------------------------------------------------


@op(description="Create or update the raw tables and the API role (tgmed-loader init-db).")
def init_db_op(context: OpExecutionContext, launcher: StageLauncher) -> Output:
    return run(context, launcher, stages.init_db())


@op(
    ins={"scraped": In(Nothing), "ready": In(Nothing)},
    description="Load what the scraper wrote (messages, their observations, channel "
    "snapshots) into raw.telegram_messages, raw.telegram_message_observations and "
    "raw.telegram_channel_snapshots.",
)
def load_messages_op(context: OpExecutionContext, launcher: StageLauncher) -> Output:
    return run(context, launcher, stages.load("telegram"))


@op(
    ins={"detected": In(Nothing), "after": In(Nothing)},
    description="Load new detection files into raw.yolo_detections.",
)
def load_detections_op(context: OpExecutionContext, launcher: StageLauncher) -> Output:
    return run(context, launcher, stages.load("detections"))


class TransformConfig(Config):
    full_refresh: bool = False


@op(ins={"after": In(Nothing)}, description="dbt build: seeds, models, tests (tgmed-transform).")
def transform_op(
    context: OpExecutionContext, launcher: StageLauncher, config: TransformConfig
) -> Output:
    output = run(context, launcher, stages.transform(config.full_refresh))
    counts = (output.value or {}).get("counts", {})
    context.log.info(
        f"dbt: {counts.get('model_success', 0)} models built, "
        f"{counts.get('test_pass', 0)} tests passed, {counts.get('test_fail', 0)} failed"
    )
    return output
