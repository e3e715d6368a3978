"""Scenario 2: kill -9 at random points of a whole run.

Each trial starts from an empty lake and warehouse, launches `telegram_pipeline`, waits
until the run reaches a point chosen at random by progress, then SIGKILLs the victim:
the run worker when the run has written its N-th event (N drawn from the clean run's
count), a stage process (or the Dagster step process that launched it) when the stage
has written N bytes (N drawn from what it wrote in the clean run: progress.py). The
killed run must be marked FAILURE and alerted within 2 minutes and leave no process; the
next, normal run must succeed and leave the lake and the warehouse equal to a clean
run's, with no temporary file."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform, log
from chaos.progress import kill_when_written
from chaos.report import Row
from chaos.trial import (
    await_failure,
    collect_leftover_processes,
    expect_alert,
    kill9,
    recover_and_compare,
    settle_alerts,
    wait_for_progress,
)
from tgmed_orchestrator.dagster_client import FINISHED, EventLog

# the orchestrator's words for a stage that said ok and then exited non-zero (outcomes.py)
AFTER_OK = "the stage reported success but exited with"


@dataclass(frozen=True)
class Victim:
    name: str
    command: str | None = None  # a stage command prefix; None: the run worker
    step_process: bool = False  # kill the Dagster step process running the stage

    def commands(self, baseline: Baseline) -> list[str]:
        return baseline.commands_of(self.command) if self.command else []


# in the order trials take them (cycled): every kind of process a run has
LOCAL_VICTIMS = [
    Victim("run worker"),
    Victim("scrape", "tgmed-scraper"),
    Victim("detect", "tgmed-yolo"),
    Victim("load", "tgmed-loader load"),
    Victim("transform", "tgmed-transform"),
    Victim("step process", "tgmed-", step_process=True),
    Victim("load", "tgmed-loader load"),
    Victim("init-db", "tgmed-loader init-db"),
]
# docker mode: the run worker is the run's container, each stage its own container
DOCKER_VICTIMS = [
    Victim("run worker container"),
    Victim("scrape container", "tgmed-scraper"),
    Victim("detect container", "tgmed-yolo"),
    Victim("load container", "tgmed-loader load"),
    Victim("transform container", "tgmed-transform"),
]


def one_trial(
    platform: LocalPlatform,
    baseline: Baseline,
    victim: Victim,
    rng: random.Random,
    row: Row,
    n: int,
) -> str | None:
    """One kill and its recovery; returns the point where the kill landed, or None when
    the run passed the point before the victim could be found (nothing was killed)."""
    platform.reset_data()
    if victim.command is None:
        first = baseline.started_at_event + 3
        target = rng.randint(first, max(first + 1, baseline.events - 3))
        point = f"event {target} of ~{baseline.events}"
        run_id = platform.launch()
        reached = wait_for_progress(platform, run_id, lambda ev: len(ev.events) >= target)
        pid = None if reached.finished else platform.run_worker_pid(run_id, reached.events)
        if pid is not None and not kill9(pid):
            pid = None
    else:
        command = rng.choice(victim.commands(baseline))
        total = baseline.written[command]
        # the last tenth is mostly the summary and exit: a kill there would often miss
        target = rng.randrange(0, max(1, int(total * 0.9)))
        point = f"{command.split(' /')[0]} after {target} of {total} bytes written"
        run_id = platform.launch()
        pid, _ = kill_when_written(
            platform.stage_processes,
            command,
            target,
            lambda: platform.api.run(run_id).status in FINISHED,
            parent=victim.step_process,
        )
    what = f"trial {n} ({victim.name}: {point})"
    if pid is None:
        log(f"  {what}: missed (the process had already exited); waiting for the run")
        platform.wait(run_id)
        collect_leftover_processes(platform, row, what)
        return None
    fault_at = time.time()
    log(f"  {what}: kill -9 {pid} (run {run_id[:8]})")
    status = await_failure(platform, run_id, fault_at, row, recover=True)
    if status == "SUCCESS" and not victim.step_process:
        # a stage killed after it had said `ok` through Pipes (its work committed) is
        # retried by design (outcomes.py); a kill that neither failed the run nor was
        # retried was not seen at all
        events = EventLog(run_id)
        platform.api.read_events(events)
        if not any(AFTER_OK in text for text in events.retries()):
            row.problems.append(
                f"{what}: run {run_id[:8]} SUCCESS after the kill, without a failure or "
                "a retry (expected FAILURE)"
            )
        else:
            log(f"  {what}: the stage had reported ok before the kill: retried, by design")
    if status == "FAILURE":
        expect_alert(run_id, platform.api.run(run_id).end_time or time.time(), row)
    collect_leftover_processes(platform, row, f"{what}, killed run")
    recover_and_compare(platform, baseline, row, what)
    return point


def run(
    platform: LocalPlatform,
    baseline: Baseline,
    trials: int,
    seconds: float,
    rng: random.Random,
    victims: list[Victim] | None = None,
) -> Row:
    victims = victims or LOCAL_VICTIMS
    row = Row("2. kill -9 at random points", platform.mode)
    started = time.monotonic()
    killed: Counter = Counter()
    attempts = missed = 0
    while sum(killed.values()) < trials and attempts < 2 * trials:
        if time.monotonic() - started > seconds:
            row.problems.append(
                f"time budget of {seconds / 60:.0f} min spent after {sum(killed.values())} trials"
            )
            break
        victim = victims[attempts % len(victims)]
        attempts += 1
        if victim.command and not victim.commands(baseline):
            log(f"  no {victim.name} stage ({victim.command}...) in this job: skipped")
            continue
        if one_trial(platform, baseline, victim, rng, row, attempts) is not None:
            killed[victim.name] += 1
        else:
            missed += 1
    settle_alerts(platform, row)
    row.trials = sum(killed.values())
    row.injected = "kill -9: " + ", ".join(f"{k} {v}" for k, v in killed.items())
    if missed:
        row.injected += f" ({missed} missed: the process had exited)"
    row.seconds = time.monotonic() - started
    return row
