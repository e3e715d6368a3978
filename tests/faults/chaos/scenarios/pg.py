"""Scenario 1: PostgreSQL restarted in the middle of the load and in the middle of dbt.

The restart is placed by progress: when the loader (or dbt) has written a random share
of what it wrote in the clean run. The run must succeed through its retries, or fail
with the alert and succeed on the next run; the warehouse (and the lake) must then equal
the clean run's."""

from __future__ import annotations

import random
import time

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform, log
from chaos.progress import wait_until_written
from chaos.report import Row
from chaos.trial import compare_with_clean, expect_alert, recover_and_compare, settle_alerts
from tgmed_orchestrator.dagster_client import FINISHED

# where to restart it: in one of the loader's commands (the messages' or the
# detections', drawn) and in dbt's, as the clean run ran them
POINTS = [("mid-load", "tgmed-loader load"), ("mid-dbt", "tgmed-transform")]


def run(platform: LocalPlatform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("1. PostgreSQL restarted", platform.mode)
    started = time.monotonic()
    injected = []
    targets = [
        (label, rng.choice(commands))
        for label, prefix in POINTS
        if (commands := sorted(baseline.commands_of(prefix)))
    ]
    for _, prefix in POINTS:
        if not baseline.commands_of(prefix):
            row.problems.append(f"the clean run never ran {prefix}...")
    for label, command in targets:
        total = baseline.written[command]
        platform.reset_data()
        target = rng.randrange(int(total * 0.1), max(int(total * 0.1) + 1, int(total * 0.9)))
        run_id = platform.launch()
        process, done = wait_until_written(
            platform.stage_processes,
            command,
            target,
            lambda run_id=run_id: platform.api.run(run_id).status in FINISHED,
        )
        what = f"{label} ({command}, after {done} of {total} bytes)"
        if process is None:
            row.problems.append(f"{label}: {command} ended before the restart point")
            platform.wait(run_id)
            continue
        fault_at = time.time()
        down = platform.restart_database()
        injected.append(label)
        log(f"  {what}: PostgreSQL restarted (down {down:.1f} s), run {run_id[:8]}")
        outcome = platform.wait(run_id)
        if outcome.status == "SUCCESS":
            found = compare_with_clean(platform, baseline, row, what)
            log(f"  {what}: the run succeeded through its retries; {found}")
            continue
        if outcome.status != "FAILURE":
            row.problems.append(f"{what}: run {run_id[:8]} ended {outcome.status}")
            continue
        row.failure_seconds.append(max(0.0, (outcome.run.end_time or time.time()) - fault_at))
        expect_alert(run_id, outcome.run.end_time or time.time(), row)
        log(f"  {what}: the run failed ({' | '.join(outcome.events.failures())[:200]})")
        recover_and_compare(platform, baseline, row, what)
    settle_alerts(platform, row)
    row.trials = len(injected)
    row.injected = "restart: " + ", ".join(injected)
    row.seconds = time.monotonic() - started
    return row
