"""Scenario 3: a stage killed for memory (docker mode). The detect stage's containers
get a memory limit (TGMED_DOCKER_STAGE_MEMORY) below what loading the model takes, so
the kernel's OOM killer ends the stage when its memory grows past it. The run must fail
within 2 minutes, not retry the stage blindly, alert naming the stage and the reason
(out of memory), and leave no container running."""

from __future__ import annotations

import random
import time

from chaos.baseline import Baseline
from chaos.platform import log
from chaos.report import Row
from chaos.trial import await_alert, collect_leftover_processes, recover_and_compare

LIMIT = "160m"


def run(platform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("3. stage killed for memory", platform.mode)
    started = time.monotonic()
    platform.reset_data()
    platform.set_stage_memory(f"detect={LIMIT}")
    try:
        fault_at = time.time()
        outcome = platform.run()
    finally:
        platform.set_stage_memory("")
    row.trials = 1
    row.injected = f"memory limit {LIMIT} on the detect stage's containers"
    run_id = outcome.run.run_id
    detect = [
        c
        for c in platform.stage_containers(run_id, running=False)
        if c.labels.get("tgmed.stage") == "detect"
    ]
    oom_at = [c for c in detect if c.attrs["State"].get("OOMKilled")]
    if not oom_at:
        row.problems.append(f"no detect container was OOM-killed ({len(detect)} ran)")
    else:
        finished = oom_at[0].attrs["State"].get("FinishedAt", "")
        fault_at = _epoch(finished) or fault_at
        log(f"  detect container OOM-killed at {finished}; run ended {outcome.run.end_time}")
    if outcome.status != "FAILURE":
        row.problems.append(f"the run ended {outcome.status} (expected FAILURE)")
    else:
        row.failure_seconds.append(max(0.0, (outcome.run.end_time or time.time()) - fault_at))
        alert = await_alert(platform, run_id, outcome.run.end_time or time.time(), row)
        if "detect" not in alert or "out of memory" not in alert:
            row.problems.append(f"the alert does not name the stage and why: {alert[:400]!r}")
    if len(detect) > 1:
        row.problems.append(f"the detect stage ran {len(detect)} times: retried after the OOM")
    collect_leftover_processes(platform, row, "OOM-killed run")
    recover_and_compare(platform, baseline, row, "after the OOM kill")
    row.seconds = time.monotonic() - started
    return row


def _epoch(stamp: str) -> float | None:
    """Docker's FinishedAt (nanoseconds, Z) as epoch seconds."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
