"""What a stage's run means to Dagster. The stage says its outcome explicitly (through
Pipes: tgmed_common.stage); this module only maps it:

    ok            the step succeeds; the stage's counts become numeric metadata
    config_error  fails at once, not retried (a retry would fail the same way)
    set_aside     the step succeeds with what went through (so the good input reaches
                  the marts in the same run) and says what was set aside (a quarantined
                  file, a broken export, a channel failed for good) in its metadata; the
                  check `nothing_set_aside` (assets/set_aside.py) then fails the run, not
                  retried, so the failure sensor sends one alert listing it (a retry would
                  "succeed" and hide what was set aside)
    transient     fails and is retried by the job's RetryPolicy (exponential backoff)
    failed        the stage itself failed (a bug, dbt tests failing): not retried, the
                  same code on the same input fails again
    timed out     the stage ran past its timeout and was stopped: not retried (it would
                  hold the warehouse slot as long again)

A stage that ended without saying anything (it never got to open Pipes): exit 2 is a
usage error (argparse), 137/143 a kill from outside (docker kill, OOM): not retried;
anything else (a crash at start, a container that never ran) is retried.
"""

from __future__ import annotations

from typing import Any

import dagster
from dagster import Failure, MetadataValue

from tgmed_common.stage import StageReport
from tgmed_orchestrator.launchers import StageRun

KILLED = {137: "SIGKILL: killed, or out of memory", 143: "SIGTERM: stopped"}


def report_metadata(report: StageReport) -> dict[str, Any]:
    """A stage report's counts as numeric metadata."""
    return dict(report.counts)


def reason(run: StageRun) -> tuple[str, bool]:
    """(what happened, whether a retry may help) for a run that did not succeed."""
    if run.timed_out:
        return (
            f"timed out: stopped after {run.timeout_seconds:g} s (TGMED_STAGE_TIMEOUT_SECONDS,"
            " TGMED_STAGE_TIMEOUTS); not retried",
            False,
        )
    outcome = run.outcome
    if outcome == "config_error":
        return "configuration error (not retried)", False
    if outcome == "set_aside":
        return "input set aside (not retried; the run fails so someone is alerted)", False
    if outcome == "transient":
        return "transient failure (retried with backoff)", True
    if outcome == "failed":
        return "the stage failed (not retried)", False
    if outcome == "ok":  # said ok, exited non-zero: the process died after reporting
        return f"the stage reported success but exited with {run.exit_code}", True
    if run.exit_code == 2:
        return "usage or configuration error (not retried)", False
    if run.exit_code in KILLED and run.reason and run.reason.startswith("out of memory"):
        return f"killed: {run.reason} (not retried)", False
    if run.exit_code in KILLED and run.reason:
        return f"killed from outside ({run.reason}; not retried)", False
    if run.exit_code in KILLED:
        return f"killed from outside ({KILLED[run.exit_code]}; not retried)", False
    return "the stage ended without reporting an outcome (retried)", True


def details(run: StageRun) -> str:
    """What went wrong, in the stage's words: its error, what failed by name (dbt's tests
    and models) and what it set aside."""
    report = run.report
    parts = []
    if run.error:
        parts.append(run.error)
    if report.failures:
        parts.append("failing: " + "; ".join(report.failures))
    if report.set_aside:
        parts.append(
            f"set aside ({report.set_aside_total}): " + "; ".join(map(str, report.set_aside))
        )
    if run.launcher_error and not parts:
        parts.append(run.launcher_error)
    return "\n".join(parts) or "no error text"


def failure(run: StageRun) -> Failure:
    what, retry = reason(run)
    return Failure(
        description=(f"{run.command.display} exited with {run.exit_code}: {what}: {details(run)}"),
        metadata={
            **report_metadata(run.report),
            "command": MetadataValue.text(run.command.display),
            "exit_code": run.exit_code if run.exit_code is not None else -1,
            "outcome": MetadataValue.text(run.outcome or "none reported"),
            "seconds": round(run.seconds, 3),
        },
        allow_retries=retry,
    )


SET_ASIDE = "set_aside"  # metadata: how many inputs a step set aside
SET_ASIDE_LISTED = "set_aside_listed"  # metadata: the first of them, with file and reason
MAX_LISTED = 20


def set_aside_metadata(runs: list[StageRun]) -> dict[str, Any]:
    """What the partial runs among `runs` set aside, as metadata the check
    `nothing_set_aside` reads: the count and the first MAX_LISTED lines."""
    partial = [run for run in runs if run.partial]
    # a partial run set at least one thing aside, whatever its report managed to say
    count = sum(max(1, run.report.set_aside_total) for run in partial)
    lines = [str(item) for run in partial for item in run.report.set_aside]
    listed = lines[:MAX_LISTED]
    if count > len(listed):
        listed.append(
            f"and {count - len(listed)} more: every one is in the lake's quarantine/ "
            "with its reason, or named in the stage's log"
        )
    text = "\n".join(f"- {line}" for line in listed) or "none"
    return {SET_ASIDE: count, SET_ASIDE_LISTED: MetadataValue.md(text)}


def check(run: StageRun) -> StageRun:
    """The run when it succeeded; raises its Failure otherwise."""
    if not run.succeeded:
        raise failure(run)
    return run


def reported(context: Any, run: StageRun) -> list[Any]:
    """The materializations and check results the stage reported, for what this step
    produces (a dbt build may run tests of models outside the selection)."""
    from dagster import AssetCheckKey, AssetCheckResult, MaterializeResult

    assets = set(context.selected_asset_keys)
    checks = set(context.selected_asset_check_keys)
    kept = []
    for result in run.results:
        if (isinstance(result, MaterializeResult) and result.asset_key in assets) or (
            isinstance(result, AssetCheckResult)
            and AssetCheckKey(result.asset_key, result.check_name) in checks
        ):
            kept.append(result)
    return kept


def error_texts(error) -> list[str]:
    """What each error along a step's cause chain (Dagster's serialised errors: `message`,
    `cls_name`, `cause`) says to a person, read by its class, not by its wording.

    Python writes an exception as `module.Class: text`; a `Failure` is the text the stage
    or check wrote (its description); an error of Dagster's own (a `DagsterError`, or one
    with nothing beyond its class name, as a retry request) only wraps its cause and is
    left out; any other keeps its class's short name (`ValueError: ...`)."""
    texts: list[str] = []
    while error is not None:
        message = (getattr(error, "message", None) or str(error)).strip()
        cls_name = getattr(error, "cls_name", None) or ""
        head, _, rest = message.partition(": ")
        named = bool(cls_name) and "\n" not in head and head.rsplit(".", 1)[-1] == cls_name
        if named:
            message = rest.strip() if message != head else ""
        own = getattr(dagster, cls_name, None) if cls_name else None
        dagster_wrapper = (
            isinstance(own, type) and issubclass(own, dagster.DagsterError) and own is not Failure
        )
        if message and not dagster_wrapper and message not in texts:
            plain = not named or cls_name == Failure.__name__
            texts.append(message if plain else f"{cls_name}: {message}")
        error = getattr(error, "cause", None)
    return texts
