"""Scenario 8: the whole platform killed mid-run, as a power cut or the OOM killer
leaves it (issue 30).

Local mode: every process of the platform (`dagster dev`: webserver, daemon, code
server; the run worker, its step processes, the stages) and the embedded PostgreSQL are
frozen and SIGKILLed together at a point drawn by progress (the run's N-th event). Docker
mode: the run worker's container, the daemon's, the stages' and PostgreSQL's main
processes are SIGKILLed from the host together (compose restarts its services: `restart:
unless-stopped`; the run worker's container stays dead).

Then the platform is started again: the dead run must be FAILURE within 60 s of that
start (local mode: the dead_run_workers sensor's first tick; docker
mode: DockerRunLauncher's), alerted, leave nothing running, and the next normal run must
succeed with the lake and the warehouse equal to a clean run's."""

from __future__ import annotations

import random
import time

from chaos.baseline import Baseline
from chaos.platform import log
from chaos.report import Row
from chaos.trial import (
    await_failure,
    collect_leftover_processes,
    expect_alert,
    recover_and_compare,
    settle_alerts,
    wait_for_progress,
)

MAX_SECONDS_AFTER_START = 60.0
TRIES = 3
TITLE = "8. whole platform killed mid-run"


def run(platform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row(TITLE, platform.mode)
    started = time.monotonic()
    platform.reset_data()
    first = baseline.started_at_event + 3
    last = max(first + 1, baseline.events - 3)
    for _ in range(TRIES):
        target = rng.randint(first, last)
        run_id = platform.launch()
        reached = wait_for_progress(platform, run_id, lambda ev, at=target: len(ev.events) >= at)
        what = f"crash at event {target} of ~{baseline.events}"
        if reached.finished:
            row.problems.append(f"{what}: the run ended before the point was reached")
            platform.wait(run_id)
            row.seconds = time.monotonic() - started
            return row
        crashed_at = time.time()
        killed = platform.crash(run_id)
        log(f"  {what}: {len(killed)} processes killed at once (run {run_id[:8]})")
        restarted_at = time.time()
        platform.start_after_crash()
        log(f"  platform up again in {time.time() - restarted_at:.0f} s")
        ended = platform.api.run(run_id)
        if ended.status != "SUCCESS" or (ended.end_time or crashed_at) > crashed_at:
            break
        # the last events come in a burst: the run can end between the point and the kill
        log(f"  run {run_id[:8]} had succeeded before the kill: an earlier point")
        last = max(first + 1, target - (baseline.events - first) // 4)
    else:
        row.problems.append(f"every run ended before its kill ({TRIES} points)")
        row.seconds = time.monotonic() - started
        return row
    status = await_failure(platform, run_id, restarted_at, row)
    after_start = row.failure_seconds[-1] if row.failure_seconds else None
    if after_start is not None and after_start > MAX_SECONDS_AFTER_START:
        row.problems.append(
            f"{what}: run {run_id[:8]} FAILURE {after_start:.0f} s after the platform's "
            f"start (at most {MAX_SECONDS_AFTER_START:.0f})"
        )
    if status == "FAILURE":
        reason = " | ".join(platform.api.events(run_id).failures())
        log(f"  run {run_id[:8]} FAILURE {after_start:.0f} s after the start: {reason[:200]}")
        expect_alert(run_id, platform.api.run(run_id).end_time or time.time(), row)
    collect_leftover_processes(platform, row, f"{what}, killed run")
    recover_and_compare(platform, baseline, row, what)
    settle_alerts(platform, row)
    row.trials = 1
    row.injected = f"{len(killed)} processes SIGKILLed together at event {target}"
    row.seconds = time.monotonic() - started
    return row
