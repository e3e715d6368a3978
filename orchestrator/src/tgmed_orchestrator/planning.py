"""Which channels a run scrapes. Channels are the lake's dynamic partitions (`channels`):
a run for chosen partitions (a backfill) scrapes or imports exactly those; a run with no
partition (the daily schedule, "Launch run" with no configuration) takes the run
configuration's channels, else the configured list (TGMED_CHANNELS_FILE, by default the
list shipped in tgmed_common: it exists in every mode), or for exports every export
folder; and registers any new one as a partition."""

# (no `from __future__ import annotations`: Dagster reads Config fields at runtime)
from dataclasses import dataclass
from pathlib import Path

from dagster import Config, DynamicPartitionsDefinition, Failure

from tgmed_common.channels import read_channels_file
from tgmed_common.records import canonical_channel
from tgmed_common.settings import ConfigError
from tgmed_orchestrator.settings import OrchestratorSettings

CHANNELS = DynamicPartitionsDefinition(name="channels")


class ScrapeConfig(Config):
    """Defaults from TGMED_SCRAPE_SOURCE, TGMED_CHANNELS_FILE, TGMED_EXPORT_ROOT."""

    source: str | None = None  # telegram | export
    channels: list[str] = []
    export_root: str | None = None


@dataclass(frozen=True)
class Plan:
    source: str
    channels: list[str]
    export_root: Path | None = None
    folders: dict[str, str] | None = None  # channel -> export folder name


def export_folders(root: Path) -> dict[str, str]:
    """channel -> folder of every export (a folder holding result.json) under root."""
    folders = {}
    for path in sorted(root.glob("*")):
        if (path / "result.json").is_file():
            try:
                folders[canonical_channel(path.name)] = path.name
            except ValueError:
                continue
    return folders


def plan(
    settings: OrchestratorSettings, config: ScrapeConfig, partitions: list[str] | None
) -> Plan:
    source = config.source or settings.scrape_source
    if source not in {"telegram", "export"}:
        raise Failure(
            description=f"unknown scrape source {source!r}: telegram or export",
            allow_retries=False,
        )
    try:
        chosen = [canonical_channel(name) for name in (partitions or config.channels)]
    except ValueError as error:
        raise Failure(description=str(error), allow_retries=False) from None
    if source == "telegram":
        if not chosen:
            try:
                chosen = read_channels_file(settings.channels_file)
            except ConfigError as error:
                raise Failure(description=str(error), allow_retries=False) from None
        return Plan("telegram", chosen)
    root = Path(config.export_root or settings.export_root)
    folders = export_folders(root)
    if not folders:
        raise Failure(
            description=f"no export folders (with result.json) under {root}; "
            "set TGMED_EXPORT_ROOT or run `make sample`",
            allow_retries=False,
        )
    missing = [name for name in chosen if name not in folders]
    if missing:
        raise Failure(
            description=f"no export folder for {', '.join(missing)} under {root} "
            f"(there are: {', '.join(folders)})",
            allow_retries=False,
        )
    chosen = chosen or list(folders)
    return Plan("export", chosen, root, {name: folders[name] for name in chosen})
