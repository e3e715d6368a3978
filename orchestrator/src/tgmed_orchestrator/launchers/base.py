"""The launcher interface: a stage invocation in, a `StageRun` (what the stage reported
through Pipes, its exit code, its time) out; the modes implement `_run`."""

from __future__ import annotations

import abc
import contextlib
import re
import signal
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, ConfigurableResource, OpExecutionContext

from tgmed_common.stage import StageReport
from tgmed_orchestrator.launchers.lifetime import TIMEOUT_EXIT, signal_exit_code
from tgmed_orchestrator.stages import StageCommand

DEFAULT_IMAGES = {
    "scrape": "tgmed-scraper:latest",
    "detect": "tgmed-yolo:latest",
    "extract": "tgmed-loader:latest",  # the loader image carries tgmed-extract too
    "load": "tgmed-loader:latest",
    "transform": "tgmed-transform:latest",
}
# the variables a stage cannot run without: always passed, so a missing one fails loudly
REQUIRED_ENV = {
    "scrape": ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"),
    "detect": (),
    "extract": (),
    "load": ("DATABASE_URL",),
    "transform": ("DATABASE_URL",),
}
STAGE_LABEL = "tgmed.stage"
INVOCATION_LABEL = "tgmed.invocation"
TIMEOUT_TAG = "tgmed/stage_timeout_seconds"
# the user every stage image runs as (useradd --uid 10001 in each Dockerfile)
STAGE_UID = 10001

Context = OpExecutionContext | AssetExecutionContext


@dataclass
class StageRun:
    """What one stage invocation did, as the stage reported it through Pipes."""

    command: StageCommand
    exit_code: int | None  # None: unknown (the launcher itself failed)
    outcome: str | None = None  # the stage's own word: ok, config_error, ... (stage.py)
    error: str = ""
    report: StageReport = field(default_factory=StageReport)  # what it did (counts, set aside)
    results: list[Any] = field(default_factory=list)  # MaterializeResult, AssetCheckResult
    messages: list[dict[str, Any]] = field(default_factory=list)  # its other custom messages
    seconds: float = 0.0
    timeout_seconds: float = 0.0
    launcher_error: str = ""
    # why the stage ended, when the launcher knows better than the exit code (the
    # container runtime says it was killed for memory)
    reason: str | None = None

    @property
    def timed_out(self) -> bool:
        return self.exit_code == TIMEOUT_EXIT or (
            self.exit_code in {137, None}
            and self.outcome is None
            and self.timeout_seconds > 0
            and self.seconds >= self.timeout_seconds
        )

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.outcome in {"ok", None}

    @property
    def partial(self) -> bool:
        """The stage finished and set some input aside; the rest went through."""
        return self.outcome == "set_aside" and self.exit_code == 1 and not self.timed_out


def run_tags(context: Context) -> Mapping[str, str]:
    try:
        return context.run.tags
    except Exception:  # a context built for a test, outside any run
        return {}


def is_outcome(message: Any) -> bool:
    return isinstance(message, dict) and message.get("tgmed") == "outcome"


def outcome_message(handler: Any) -> dict[str, Any] | None:
    if handler is None:
        return None
    return next((m for m in reversed(handler.get_custom_messages()) if is_outcome(m)), None)


def labels(context: Context, command: StageCommand, invocation: str) -> dict[str, str]:
    labels = {STAGE_LABEL: command.stage, INVOCATION_LABEL: invocation}
    with contextlib.suppress(Exception):
        labels["dagster/run-id"] = context.run.run_id
    with contextlib.suppress(Exception):
        labels["dagster/job"] = context.job_name
    with contextlib.suppress(Exception):
        labels["dagster/op"] = context.op.name
    return labels


def invocation_id(command: StageCommand) -> str:
    label = re.sub(r"[^a-z0-9-]", "-", (command.label or command.stage).lower())[:30]
    return f"{command.stage}-{label}-{uuid.uuid4().hex[:8]}".strip("-")


class StageLauncher(ConfigurableResource):
    """Runs one stage invocation and reports how it went. An interface: the launch
    modes below implement `_run`; this class itself cannot be built."""

    timeout_seconds: float = 3600.0
    stage_timeouts: dict[str, float] = {}

    def timeout_for(self, stage: str, tags: Mapping[str, str] | None = None) -> float:
        """The stage's timeout: the run's tag `tgmed/stage_timeout_seconds` (one run
        that needs longer, or a test of the timeout path), else the configured one."""
        if tags and tags.get(TIMEOUT_TAG):
            return float(tags[TIMEOUT_TAG])
        return float(self.stage_timeouts.get(stage, self.timeout_seconds))

    def export_path(self, export_root: str, folder: str) -> str:
        """Where the stage finds an export folder (the root is mounted in containers)."""
        return str(Path(export_root) / folder)

    def prune(self, context: Context) -> int:
        """Remove finished stage containers; returns how many."""
        return 0

    def launch(self, context: Context, command: StageCommand) -> StageRun:
        timeout = self.timeout_for(command.stage, run_tags(context))
        context.log.info(f"launching {command.display} ({self.mode}, timeout {timeout:g} s)")
        started = time.monotonic()
        run = StageRun(command, exit_code=None, timeout_seconds=timeout)
        handler = None
        try:
            handler = self._run(context, command, timeout)
            run.exit_code = 0
        except StageExit as failed:
            handler, run.launcher_error = failed.handler, failed.text
            run.exit_code, run.reason = signal_exit_code(failed.code), failed.reason
            if failed.code is not None and failed.code < 0:
                run.reason = run.reason or f"killed by {signal.Signals(-failed.code).name}"
        run.seconds = time.monotonic() - started
        message = outcome_message(handler)
        if message is not None:
            run.outcome = message.get("outcome")
            run.error = message.get("error") or ""
            run.report = StageReport.from_dict(message.get("report"))
        if handler is not None:
            run.results = list(handler.get_reported_results())
            run.messages = [
                m
                for m in handler.get_custom_messages()
                if isinstance(m, dict) and not is_outcome(m)
            ]
        return run

    @property
    def mode(self) -> str:
        return type(self).__name__.removesuffix("StageLauncher").lower()

    @abc.abstractmethod
    def _run(self, context: Context, command: StageCommand, timeout: float) -> Any:
        """Run the command through the mode's Pipes client; returns the message handler,
        raises StageExit when the stage did not exit 0."""


class StageExit(Exception):
    def __init__(
        self, handler: Any, code: int | None, text: str, reason: str | None = None
    ) -> None:
        super().__init__(text)
        self.handler, self.code, self.text, self.reason = handler, code, text, reason
