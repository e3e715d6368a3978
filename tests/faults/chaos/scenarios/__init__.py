"""The scenarios, in the order `make chaos` runs them. `ci`: it takes under 5 minutes on
a machine of this project's kind and runs in .ci/run."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform
from chaos.report import Row
from chaos.scenarios import disk, floodwait, kill, malformed, pg, secrets


@dataclass(frozen=True)
class Scenario:
    title: str
    ci: bool
    body: Callable[..., list[Row]]

    def run(
        self, platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int
    ) -> list[Row]:
        return self.body(platform, baseline, rng=rng, trials=trials)


def _kill(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [kill.run(platform, baseline, trials, seconds=25 * 60, rng=rng)]


def _pg(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [pg.run(platform, baseline, rng)]


def _malformed(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [malformed.run(platform, baseline, rng)]


def _disk(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [disk.run(platform, baseline, rng)]


def _floodwait(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [floodwait.run(platform, baseline, rng)]


def _secrets(platform: LocalPlatform, baseline: Baseline, *, rng: random.Random, trials: int):
    return [secrets.run(platform, baseline, rng)]


SCENARIOS: dict[str, Scenario] = {
    "pg": Scenario("1. PostgreSQL restarted", ci=True, body=_pg),
    "kill": Scenario("2. kill -9 at random points", ci=False, body=_kill),
    "disk": Scenario("4. lake disk full", ci=True, body=_disk),
    "floodwait": Scenario("5. FloodWait storm", ci=True, body=_floodwait),
    "malformed": Scenario("6. malformed input at volume", ci=True, body=_malformed),
    # last: it reads what every other scenario left behind
    "secrets": Scenario("7. secrets", ci=True, body=_secrets),
}
