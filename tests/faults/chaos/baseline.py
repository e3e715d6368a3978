"""The clean run every scenario is compared with: its final lake and warehouse, and where
in its event log each stage ran (so faults can be placed by progress, not by time)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chaos.snapshot import Snapshot
from tgmed_orchestrator.dagster_client import EventLog

# "launching tgmed-loader load messages (local)" / "... in tgmed-loader:latest (container
# ...)": the launcher's words when it starts a stage (the step that launched it follows)
LAUNCHING = re.compile(r"launching (?P<command>tgmed-[a-z]+ [^\n(]*?)\s*(\(|in tgmed-|as a |$)")
STAGE_OF_CLI = {
    "tgmed-scraper": "scrape",
    "tgmed-yolo": "detect",
    "tgmed-loader": "load",
    "tgmed-transform": "transform",
}


@dataclass(frozen=True)
class StageStep:
    """A step of the clean run that launched a stage, and how many events it wrote."""

    step_key: str
    command: str  # the stage's command as the launcher logged it
    events: int

    @property
    def stage(self) -> str:
        return STAGE_OF_CLI.get(self.command.split()[0], "?")


@dataclass
class Baseline:
    outcome_seconds: float
    events: int
    snapshot: Snapshot
    steps: list[StageStep] = field(default_factory=list)
    # stage command -> bytes it wrote (progress.StageWatcher)
    written: dict[str, int] = field(default_factory=dict)
    # events written before the run worker started (the run's planned materializations
    # and checks are logged when the run is created): a kill of the run worker is drawn
    # after them, when there is a run worker to kill
    started_at_event: int = 0

    def commands_of(self, prefix: str) -> list[str]:
        return sorted(c for c in self.written if c.startswith(prefix))

    def steps_of(self, command_prefix: str) -> list[StageStep]:
        return [s for s in self.steps if s.command.startswith(command_prefix)]


def run_start_index(log: EventLog) -> int:
    """How many events the run had when its run worker said it started."""
    for index, event in enumerate(log.events):
        if event.get("__typename") == "RunStartEvent":
            return index
    return 0


def stage_steps(log: EventLog) -> list[StageStep]:
    found: dict[str, str] = {}
    for event in log.events:
        match = LAUNCHING.search(event.get("message") or "")
        if match and event.get("stepKey") and event["stepKey"] not in found:
            found[event["stepKey"]] = match.group("command").strip()
    return [StageStep(step, command, len(log.step_events(step))) for step, command in found.items()]
