"""`nothing_set_aside`: the check that fails a run which set input aside.

A stage that sets input aside (the loader's quarantined lake files, an import's broken
exports or refused photos, a scrape's channel failed for good) finishes what went
through, and its step succeeds: the good input reaches the raw tables and the marts in
the same run. The step's materialization says what was set aside (`set_aside`, and the
first lines with file, line and reason). This check, a step of its own after that
materialization and upstream of nothing, then fails (not retried: the same input fails
the same way), so the run ends FAILURE and the failure sensor sends one alert that
lists what was set aside, however many files it was.
"""

# (no `from __future__ import annotations`: Dagster reads these type hints at runtime)
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from tgmed_orchestrator.assets.lake import EXTRACTIONS, MESSAGES
from tgmed_orchestrator.assets.raw import RAW_DETECTIONS, RAW_EXTRACTIONS, RAW_MESSAGES
from tgmed_orchestrator.outcomes import SET_ASIDE, SET_ASIDE_LISTED

CHECK = "nothing_set_aside"


def set_aside_in_run(instance: DagsterInstance, run_id: str, key: AssetKey) -> tuple[int, str]:
    """(how many inputs, the listed ones) the run's materializations of `key` set aside."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    count, listed = 0, []
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is None or materialization.asset_key != key:
            continue
        value = materialization.metadata.get(SET_ASIDE)
        if value is not None and int(value.value):
            count += int(value.value)
            text = materialization.metadata.get(SET_ASIDE_LISTED)
            listed.append(str(text.value) if text is not None else "")
    return count, "\n".join(part for part in listed if part)


def set_aside_gate(key: AssetKey, what: str) -> Any:
    @multi_asset_check(
        name=f"{key.to_python_identifier()}_{CHECK}",
        specs=[
            AssetCheckSpec(
                CHECK,
                asset=key,
                description=f"The {what} step set no input aside. When it did, what went "
                "through is materialized and goes on downstream; this check fails the run "
                "(one alert listing the files, not retried).",
            )
        ],
    )
    def gate(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        count, listed = set_aside_in_run(context.instance, context.run.run_id, key)
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK,
            passed=count == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={SET_ASIDE: count, SET_ASIDE_LISTED: MetadataValue.md(listed or "none")},
        )
        if count:
            raise Failure(
                description=(
                    f"input set aside: {count} by the {what} step ({key.to_user_string()}); "
                    f"everything else went through. Fix or remove each, then run again:\n"
                    f"{listed}"
                ),
                metadata={SET_ASIDE: count},
                allow_retries=False,
            )

    return gate


GATES = [
    set_aside_gate(MESSAGES, "scrape/import"),
    set_aside_gate(RAW_MESSAGES, "load of the Telegram streams"),
    set_aside_gate(RAW_DETECTIONS, "load of the detections"),
    set_aside_gate(EXTRACTIONS, "extraction"),
    set_aside_gate(RAW_EXTRACTIONS, "load of the extractions"),
]
