"""The scenarios, in the order `make chaos` runs them, with the launch modes each runs
in. `ci`: it takes under 5 minutes on a machine of this project's kind and runs in
.ci/run (which has no built images: local mode only)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaos.baseline import Baseline
from chaos.report import Row
from chaos.scenarios import crash, disk, floodwait, kill, malformed, oom, pg, secrets

KILL_MINUTES = 25


@dataclass(frozen=True)
class Scenario:
    title: str
    ci: bool
    modes: tuple[str, ...]
    body: Callable[[Any, Baseline, random.Random, int], Row]

    def run(self, platform: Any, baseline: Baseline, rng: random.Random, trials: int) -> Row:
        return self.body(platform, baseline, rng, trials)


def _kill(platform: Any, baseline: Baseline, rng: random.Random, trials: int) -> Row:
    victims = kill.DOCKER_VICTIMS if platform.mode == "docker" else kill.LOCAL_VICTIMS
    return kill.run(platform, baseline, trials, KILL_MINUTES * 60, rng, victims)


SCENARIOS: dict[str, Scenario] = {
    "pg": Scenario(
        "1. PostgreSQL restarted", True, ("local", "docker"), lambda p, b, r, t: pg.run(p, b, r)
    ),
    "kill": Scenario("2. kill -9 at random points", False, ("local", "docker"), _kill),
    "oom": Scenario(
        "3. stage killed for memory", False, ("docker",), lambda p, b, r, t: oom.run(p, b, r)
    ),
    "disk": Scenario("4. lake disk full", True, ("local",), lambda p, b, r, t: disk.run(p, b, r)),
    "floodwait": Scenario(
        "5. FloodWait storm", True, ("local",), lambda p, b, r, t: floodwait.run(p, b, r)
    ),
    "malformed": Scenario(
        "6. malformed input at volume",
        True,
        ("local",),
        lambda p, b, r, t: malformed.run(p, b, r),
    ),
    "crash": Scenario(
        crash.TITLE, True, ("local", "docker"), lambda p, b, r, t: crash.run(p, b, r)
    ),
    # last: it reads what every other scenario left behind
    "secrets": Scenario(
        "7. secrets", True, ("local", "docker"), lambda p, b, r, t: secrets.run(p, b, r)
    ),
}
