"""What a stage is to the orchestrator: a CLI, its arguments, and the environment
variables it reads. The same command runs in every launch mode; only the launcher
(local process, Docker container, Kubernetes Job) differs."""

from __future__ import annotations

from dataclasses import dataclass, field

# The five stage images (and the local virtual environments) carry these CLIs.
STAGES = ("scrape", "detect", "extract", "load", "transform")

# Variables each stage reads: the only ones passed to its container. Secrets among them
# (TELEGRAM_API_HASH, TELEGRAM_SESSION, DATABASE_URL, API_DB_PASSWORD) come from the
# launching process's environment (docker) or a Secret (k8s), never from a default.
STAGE_ENV: dict[str, tuple[str, ...]] = {
    "scrape": (
        "LAKE_DIR",
        "TELEGRAM_API_ID",
        "TELEGRAM_API_HASH",
        "TELEGRAM_SESSION",
        "TELEGRAM_SERVER",
        "TELEGRAM_SERVER_DC_ID",
        "TELEGRAM_SERVER_PUBLIC_KEY",
        "SCRAPER_CONCURRENCY",
        "SCRAPER_FLOOD_WAIT_MAX_SECONDS",
        "SCRAPER_FLOOD_WAIT_TOTAL_SECONDS",
        "SCRAPER_BATCH_SIZE",
        "SCRAPER_FIRST_RUN_LIMIT",
        "SCRAPER_DOWNLOAD_PHOTOS",
        "SCRAPER_EXPORT_MAX_PHOTO_BYTES",
        "SCRAPER_EXPORT_MAX_BYTES",
        "SCRAPER_REFRESH_DAYS",
        "SCRAPER_REQUEST_TIMEOUT_SECONDS",
        "SCRAPER_CHANNEL_TIMEOUT_SECONDS",
    ),
    "detect": (
        "LAKE_DIR",
        "DETECT_MODEL",
        "DETECT_CONFIDENCE",
        "DETECT_IOU",
        "DETECT_IMAGE_SIZE",
        "DETECT_BATCH_SIZE",
        "DETECT_DEVICE",
        "DETECT_DECODE_THREADS",
        "DETECT_COMMIT_EVERY",
        "DETECT_RUNTIME",
        "DETECT_RECTANGULAR",
        "DETECT_HALF",
        "YOLO_OFFLINE",
        "YOLO_AUTOINSTALL",
    ),
    "extract": ("LAKE_DIR", "EXTRACT_WORKERS"),
    "load": ("LAKE_DIR", "DATABASE_URL", "LOADER_WORKERS", "API_DB_USER", "API_DB_PASSWORD"),
    "transform": ("DATABASE_URL", "DBT_PROJECT_DIR", "TRANSFORM_PUBLISH_DOCS"),
}
# what an export import must never see (issue 11): it reads files someone sent, so it
# gets no Telegram credential in any mode
TELEGRAM_ENV = ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION")

SECRET_ENV = ("TELEGRAM_API_HASH", "TELEGRAM_SESSION", "DATABASE_URL", "API_DB_PASSWORD")


@dataclass(frozen=True)
class StageCommand:
    """One stage invocation: `argv[0]` is the stage's CLI (on PATH in its image, in its
    virtual environment's bin folder locally)."""

    stage: str
    argv: tuple[str, ...]
    # a name for logs, container and Job names: scrape-chemed123, detect-1-of-2
    label: str = ""
    exports: bool = field(default=False)  # reads the Telegram Desktop exports

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; stages are {', '.join(STAGES)}")

    @property
    def display(self) -> str:
        return " ".join(self.argv)

    def env_names(self) -> tuple[str, ...]:
        """The variables this invocation gets: its stage's, and an export import none of
        Telegram's."""
        names = STAGE_ENV[self.stage]
        if self.exports:
            names = tuple(name for name in names if name not in TELEGRAM_ENV)
        return names


def scrape_telegram(channels: list[str]) -> StageCommand:
    """All Telegram channels of a run in ONE process: one connection, one session."""
    argv = ["tgmed-scraper", "scrape"]
    for channel in channels:
        argv += ["--channel", channel]
    label = channels[0] if len(channels) == 1 else f"{len(channels)}-channels"
    return StageCommand("scrape", tuple(argv), label)


def scrape_export(path: str, channel: str) -> StageCommand:
    """`path` as the stage sees it (the launcher maps the export root into containers)."""
    return StageCommand(
        "scrape",
        ("tgmed-scraper", "import-export", path, "--channel", channel),
        channel,
        exports=True,
    )


def detect(shard: int, shards: int) -> StageCommand:
    return StageCommand(
        "detect", ("tgmed-yolo", "detect", "--shard", f"{shard}/{shards}"), f"{shard}-of-{shards}"
    )


def extract() -> StageCommand:
    return StageCommand("extract", ("tgmed-extract", "run"), "run")


def init_db() -> StageCommand:
    return StageCommand("load", ("tgmed-loader", "init-db"), "init-db")


def load(stream: str) -> StageCommand:
    return StageCommand("load", ("tgmed-loader", "load", stream), stream)


def transform(
    full_refresh: bool = False, select: list[str] | None = None, indirect: str | None = None
) -> StageCommand:
    argv = ["tgmed-transform", "build"]
    if full_refresh:
        argv.append("--full-refresh")
    if select:
        argv += ["--select", *select]
    if indirect:
        argv += ["--indirect-selection", indirect]
    return StageCommand("transform", tuple(argv), "build")
