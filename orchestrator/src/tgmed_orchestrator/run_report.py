"""A run's events as the few lines a person wants in a terminal (`tgmed-orchestrator
launch`): one line per step with the stage's counts (the numbers of the assets it
materialized, or of an op's summary; a step that materialized many assets, like dbt's,
gets their count and its checks instead), the stages' own progress lines for slow steps
(at most one per step every PROGRESS_EVERY seconds), retries and failures; the full logs
stay in the UI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TextIO

from dagster import AssetCheckSeverity, DagsterEventType

from tgmed_orchestrator.outcomes import error_texts

PROGRESS_EVERY = 15.0
MATERIALIZATIONS_LISTED = 10  # more (dbt's models) are counted, not listed
_PROGRESS = re.compile(r"\bprogress: (?P<text>.+)$")
_NOT_COUNTS = ("seconds", "per_second", "exit_code", "_ns")


def counts_line(summary: dict[str, Any] | None) -> str:
    """A stage summary's numbers as `name value, ...` (dbt's `counts.` prefix dropped)."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            if not prefix.endswith(_NOT_COUNTS):
                parts.append(f"{prefix.removeprefix('counts.')} {value:,}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)

    walk("", summary or {})
    return ", ".join(parts)


@dataclass
class RunReporter:
    """Turns a run's events into the few lines a person wants in a terminal."""

    out: TextIO
    started: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)
    materialized: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, list[bool]] = field(default_factory=dict)
    last_progress: dict[str, float] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, entry) -> None:
        event = entry.dagster_event
        step = entry.step_key or ""
        if event is None:
            self._log_line(step, entry.user_message or "", entry.timestamp)
            return
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            self.say("run started")
        elif kind == DagsterEventType.STEP_START:
            self.started[step] = entry.timestamp
        elif kind == DagsterEventType.STEP_OUTPUT:
            summary = event.event_specific_data.metadata.get("summary")
            if summary is not None:
                self.summaries[step] = summary.value
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            numbers = {key: value.value for key, value in materialization.metadata.items()}
            where = f" [{materialization.partition}]" if materialization.partition else ""
            line = f"{materialization.asset_key.to_user_string()}{where}"
            counts = counts_line(numbers)
            self.materialized.setdefault(step, []).append(f"{line}: {counts}" if counts else line)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            outcome = "passed"
            if not evaluation.passed:
                warn = evaluation.severity == AssetCheckSeverity.WARN
                outcome = f"{'warning' if warn else 'FAILED'} {evaluation.check_name}"
            self.checks.setdefault(step, []).append(outcome)
        elif kind == DagsterEventType.STEP_SUCCESS:
            self._step_done(step, entry.timestamp - self.started.get(step, entry.timestamp))
        elif kind == DagsterEventType.STEP_UP_FOR_RETRY:
            data = event.event_specific_data
            wait = getattr(data, "seconds_to_wait", None)
            why = first_line(getattr(data, "error", None))
            self.say(f"  retry   {step} in {wait or 0:.0f} s: {why}")
        elif kind == DagsterEventType.STEP_FAILURE:
            self.say(f"  FAILED  {step}: {first_line(event.event_specific_data.error)}")
        elif kind == DagsterEventType.RUN_FAILURE:
            message = entry.user_message or ""
            if "steps failed" not in message.lower():
                self.say(f"  run failed: {message.splitlines()[0] if message else ''}")

    def _step_done(self, step: str, took: float) -> None:
        materialized = self.materialized.get(step, [])
        checks = self.checks.get(step, [])
        head = f"  ok      {step} ({took:.0f} s)"
        if checks and not materialized and step not in self.summaries:  # a check's own step
            self.say(f"{head}: {self._checks_line(checks)}")
            return
        if step in self.summaries:
            counts = counts_line(self.summaries[step])
            self.say(f"{head}{': ' + counts if counts else ''}")
        elif len(materialized) == 1:
            self.say(f"{head}: {materialized[0]}")
        elif len(materialized) <= MATERIALIZATIONS_LISTED:
            self.say(head)
            for line in materialized:
                self.say(f"          {line}")
        else:
            self.say(f"{head}: {len(materialized)} assets materialized")
        if checks:
            self.say(f"          {self._checks_line(checks)}")

    @staticmethod
    def _checks_line(checks: list[str]) -> str:
        others = sorted(outcome for outcome in checks if outcome != "passed")
        listed = ", ".join(others[:MATERIALIZATIONS_LISTED])
        more = (
            f" and {len(others) - MATERIALIZATIONS_LISTED} more"
            if len(others) > MATERIALIZATIONS_LISTED
            else ""
        )
        return f"checks: {len(checks) - len(others)} passed" + (
            f"; {listed}{more} (see the UI)" if others else ""
        )

    def _log_line(self, step: str, message: str, when: float) -> None:
        match = _PROGRESS.search(message)
        if not match or not step:
            return
        final = ": done," in match["text"]
        if final or when - self.last_progress.get(step, 0.0) >= PROGRESS_EVERY:
            self.last_progress[step] = when
            if not final:
                self.say(f"  ...     {step}: {match['text']}")


def first_line(error) -> str:
    """What a person needs of a step's error: the first line of each message along its
    cause chain, without Dagster's own wrappers (outcomes.error_texts)."""
    lines: list[str] = []
    for text in error_texts(error):
        first = text.splitlines()[0]
        if first not in lines:
            lines.append(first)
    return "; caused by: ".join(lines)[:400]
