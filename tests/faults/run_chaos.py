"""`make chaos`: whole `telegram_pipeline` runs through Dagster with faults injected
underneath them; prints one row per scenario (lost rows, duplicated rows, leftovers,
time to FAILURE, alert) and keeps the table in docs/reliability.md.

    python tests/faults/run_chaos.py                  every scenario (docker ones when the
                                                      engine and the images are there)
    python tests/faults/run_chaos.py --ci             the scenarios that take under 5 min
    python tests/faults/run_chaos.py --only kill --trials 3

Exit code 0 when every row meets the goal (0 lost, 0 duplicated, 0 leftovers, every
failure detected and alerted within 2 minutes), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos import report
from chaos.baseline import Baseline, run_start_index, stage_steps
from chaos.docker_platform import engine_ready
from chaos.platform import ROOT, LocalPlatform, log
from chaos.progress import StageWatcher
from chaos.report import Row
from chaos.scenarios import SCENARIOS
from chaos.trial import ensure_quiet


def clean_baseline(platform: LocalPlatform) -> Baseline:
    platform.reset_data()
    with StageWatcher(platform.stage_processes) as watcher:
        outcome = platform.run()
    if outcome.status != "SUCCESS":
        raise SystemExit(
            f"the clean run ended {outcome.status}: " + " | ".join(outcome.events.failures())[:3000]
        )
    snap = platform.snapshot()
    if snap.temp_files:
        raise SystemExit(f"the clean run left temporary files: {snap.temp_files}")
    baseline = Baseline(
        outcome.seconds,
        len(outcome.events.events),
        snap,
        stage_steps(outcome.events),
        written=dict(watcher.totals),
        started_at_event=run_start_index(outcome.events),
    )
    log(
        f"clean run: SUCCESS in {outcome.seconds:.0f} s, {baseline.events} events "
        f"({baseline.started_at_event} before the run worker started), "
        f"stages wrote {baseline.written}"
    )
    for name, text in snap.summary().items():
        log(f"  {name}: {text}")
    return baseline


def run_mode(platform, names: list[str], rng: random.Random, trials: int) -> list[Row]:
    """The clean run, then each scenario of this mode in turn."""
    rows: list[Row] = []
    names = [n for n in names if platform.mode in SCENARIOS[n].modes]
    if not names:
        return rows
    baseline = clean_baseline(platform)
    for name in names:
        scenario = SCENARIOS[name]
        log(f"scenario {name} ({platform.mode}): {scenario.title}")
        began = time.monotonic()
        try:
            row = scenario.run(platform, baseline, rng, trials)
        except Exception as error:  # a scenario that breaks is a finding, not a crash
            row = Row(scenario.title, platform.mode, problems=[f"{type(error).__name__}: {error}"])
            log(f"scenario {name} broke: {type(error).__name__}: {error}")
        row.seconds = row.seconds or time.monotonic() - began
        rows.append(row)
        log(f"  -> {' | '.join(row.cells())} ({row.seconds / 60:.1f} min)")
        ensure_quiet(platform)
    return rows


class DockerMode:
    """Docker mode: its scenarios run in a thread beside the local ones (`--serial`:
    after them). Its images are scanned for secrets (scenario 7) by a thread of their
    own at the lowest priority from the start: the suite never builds or changes an
    image, and the scan is a minute or more of `docker save` (the yolo image alone is
    6.5 GB)."""

    def __init__(self, names: list[str], workdir: Path, local: LocalPlatform) -> None:
        self.wanted = [n for n in names if "docker" in SCENARIOS[n].modes]
        self.workdir, self.local = workdir, local
        self.platform = None
        self.reason: str | None = None
        self.locked = False
        self.runner: threading.Thread | None = None
        self.result: list[Row] = []
        self.error: BaseException | None = None
        self.scan = threading.Thread(target=self._scan_images, name="image-scan", daemon=True)

    def start(self) -> None:
        """The engine and the images checked; the image scan started."""
        if not self.wanted:
            return
        self.reason = engine_ready()
        if self.reason is not None:
            return
        from chaos.docker_platform import DockerPlatform

        self.platform = DockerPlatform(self.workdir / "docker", self.local)
        if "secrets" in self.wanted:
            self.scan.start()

    def _scan_images(self) -> None:
        with contextlib.suppress(OSError):  # this thread alone (a Linux task of its own)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        began = time.monotonic()
        try:
            self.platform.scan_images()
        except Exception as error:  # scenario 7 scans again and reports it
            log(f"image scan failed, scenario 7 tries again: {type(error).__name__}: {error}")
            return
        log(f"docker mode's images scanned for secrets in {time.monotonic() - began:.0f} s")

    def start_scenarios(self, rng: random.Random, trials: int) -> None:
        """Docker mode's scenarios in a thread of their own, beside the local ones (the
        two platforms share nothing but the machine; faults are placed by progress, so
        a busier machine moves no fault); `rows` waits for them."""
        if not self.wanted or self.platform is None:
            return

        def scenarios() -> None:
            try:
                self.result = self._scenarios(rng, trials)
            except BaseException as error:  # raised where the rows are asked for
                self.error = error

        self.runner = threading.Thread(target=scenarios, name="docker", daemon=True)
        self.runner.start()

    def rows(self, rng: random.Random, trials: int) -> list[Row]:
        if self.runner is None:
            return self._scenarios(rng, trials)
        self.runner.join()
        if self.error is not None:
            raise self.error
        return self.result

    def _scenarios(self, rng: random.Random, trials: int) -> list[Row]:
        if not self.wanted:
            return []
        if self.platform is not None:
            log("waiting for the shared Docker engine's lock (/tmp/tgmed-docker.lock)")
            if self.platform.lock(timeout=30 * 60):
                self.locked = True
                self.platform.start()
                return run_mode(self.platform, self.wanted, rng, trials)
            self.reason = "the Docker engine stayed busy (lock held) for 30 minutes"
        log(f"docker mode skipped: {self.reason}")
        return [Row(SCENARIOS[n].title, "docker", skipped=self.reason) for n in self.wanted]

    def close(self) -> None:
        if self.runner is not None and self.runner.is_alive():
            self.runner.join(timeout=60)  # interrupted: the platform goes down regardless
        if self.scan.is_alive():
            self.scan.join()
        if self.platform is None:
            return
        if self.locked:
            self.platform.close()  # its logs saved, compose down, the lock released
        else:  # never brought up: the engine may be another session's
            self.platform.receiver.close()


def stop(*_: object) -> None:
    """SIGTERM: exit through the `finally` that takes the platforms down; a second TERM
    (`uv run` forwards the one a `pkill` also sent it) must not cut that short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario names: " + ", ".join(SCENARIOS))
    parser.add_argument("--ci", action="store_true", help="only the scenarios under 5 minutes")
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument(
        "--docker-trials",
        type=int,
        default=5,
        help="of those, in docker mode (default 5: the run worker and each stage's container)",
    )
    parser.add_argument("--no-docker", action="store_true", help="local mode only")
    parser.add_argument("--docker-only", action="store_true", help="docker mode only")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="docker mode's scenarios after the local ones (default: beside them)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random points (default: time)")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write the table into this file (make chaos: docs/reliability.md)",
    )
    args = parser.parse_args(argv)
    # stopped from outside (or started in the background, where SIGINT is ignored): the
    # platforms are still taken down (finally below)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    names = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(names) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if args.ci:
        names = [n for n in names if SCENARIOS[n].ci]
    docker = not (args.no_docker or args.ci) and any("docker" in SCENARIOS[n].modes for n in names)
    docker_trials = min(args.docker_trials, args.trials) if docker else 0
    if args.docker_only:
        docker, docker_trials = True, args.docker_trials
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    started = time.monotonic()
    started_machine = report.machine()
    # short path: the embedded server's socket lives in its data folder
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tgc-", dir="/tmp"))
    log(f"scenarios {names}, seed {seed}, {started_machine}")
    rows: list[Row] = []
    local = LocalPlatform(workdir)
    docker_mode = DockerMode(names if docker else [], workdir, local)
    # each mode draws its own points: a seed gives the same draws whatever the interleaving
    docker_rng = random.Random(f"{seed}-docker")
    try:
        local.prepare()  # the sample and the fake Telegram's configuration, for both modes
        docker_mode.start()
        if not args.serial:
            docker_mode.start_scenarios(docker_rng, docker_trials)
        if not args.docker_only:
            local.start()
            rows += run_mode(local, names, rng, args.trials - docker_trials)
            local.stop()
        rows += docker_mode.rows(docker_rng, docker_trials)
    finally:
        docker_mode.close()
        local.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    print()
    print(report.table(rows))
    found = report.details(rows)
    if found:
        print("\n" + found)
    print(f"\n{len(rows)} rows in {seconds / 60:.1f} min (seed {seed})")
    if args.report:
        command = "make chaos" + (" (CI subset)" if args.ci else "")
        report.write(ROOT / args.report, rows, seconds, command, started_machine)
        log(f"table written to {args.report}")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
