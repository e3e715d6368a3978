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

from tgmed_orchestrator.launchers import StageRun

KILLED = {137: "SIGKILL: killed, or out of memory", 143: "SIGTERM: stopped"}


def summary_metadata(summary: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Numbers of a stage's summary as numeric metadata (nested ones as `parent.child`)."""
    metadata: dict[str, Any] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, bool):
            metadata[name] = MetadataValue.bool(value)
        elif isinstance(value, int | float):
            metadata[name] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}" if name else str(key), item)

    walk(prefix, summary or {})
    return metadata


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


def summary_parts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary and, for a load of several streams (`load telegram`), each stream's."""
    streams = summary.get("streams") or []
    return [summary, *(s for s in streams if isinstance(s, dict))]


def details(run: StageRun) -> str:
    summary = run.summary or {}
    parts = []
    if run.error:
        parts.append(run.error)
    failures = summary.get("failures")
    if isinstance(failures, list) and failures:  # dbt: the failing tests and models by name
        parts.append("failing: " + "; ".join(str(f) for f in failures))
    elif isinstance(failures, dict) and failures:
        parts.append("failures: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    for part in summary_parts(summary):
        for key in ("quarantine_reasons", "failed_channels", "failed"):
            value = part.get(key)
            if isinstance(value, dict) and value:
                parts.append(f"{key}: " + "; ".join(f"{k}: {v}" for k, v in value.items()))
    for key in ("quarantined", "photo_errors"):
        if summary.get(key):
            parts.append(f"{key}={summary[key]}")
    if run.launcher_error and not parts:
        parts.append(run.launcher_error)
    return "\n".join(parts) or "no error text"


def failure(run: StageRun) -> Failure:
    what, retry = reason(run)
    return Failure(
        description=(f"{run.command.display} exited with {run.exit_code}: {what}: {details(run)}"),
        metadata={
            **summary_metadata(run.summary),
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


def set_aside_lines(summary: dict[str, Any]) -> list[str]:
    """Every input a stage's summary says it set aside, a line each with its file (and
    line, where the stage knows it) and the reason: the loader's quarantined files, an
    import's failed exports and refused photos, a scrape's channels failed for good."""
    lines: list[str] = []
    for part in summary_parts(summary):
        for key in ("quarantine_reasons", "failed", "failed_channels"):
            value = part.get(key)
            if isinstance(value, dict):
                prefix = "channel " if key == "failed_channels" else ""
                lines += [
                    str(why) if str(why).startswith(str(name)) else f"{prefix}{name}: {why}"
                    for name, why in value.items()
                ]
    refused = summary.get("media_refused_messages")
    if isinstance(refused, list):
        lines += [f"photo refused, message kept: {line}" for line in refused]
    return lines


def set_aside_count(summary: dict[str, Any]) -> int:
    """How many inputs the summary says were set aside (a refused photo counts once,
    the lists in summaries are capped)."""
    count = 0
    for key in ("quarantined", "media_refused", "failed", "failed_channels"):
        value = summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            count += value
        elif isinstance(value, dict):
            count += len(value)
    return count


def set_aside_metadata(runs: list[StageRun]) -> dict[str, Any]:
    """What the partial runs among `runs` set aside, as metadata the check
    `nothing_set_aside` reads: the count and the first MAX_LISTED lines."""
    partial = [run for run in runs if run.partial]
    # a partial run set at least one thing aside, whatever its summary managed to say
    count = sum(max(1, set_aside_count(run.summary)) for run in partial)
    lines = [line for run in partial for line in set_aside_lines(run.summary)]
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
