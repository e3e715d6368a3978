"""Progress for long work: counts, rate and ETA, logged at a steady interval so both a
terminal and a container log show that the stage is alive and how far it has to go."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class Progress:
    """`advance(n)` as work is done; logs at most every `interval` seconds, and `done()`
    logs the final line. `total` may be unknown (None): then no ETA. `clock` is
    time.monotonic; tests pass their own, so what they assert never depends on speed."""

    label: str
    unit: str = "items"
    total: int | None = None
    interval: float = 5.0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("progress"))
    clock: Callable[[], float] = time.monotonic
    count: int = 0
    started: float | None = None
    _last_log: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()
        self._last_log = self.started

    def restart(self) -> None:
        """Count time from now: what came before was setup (a model loaded, a project
        parsed), not the work the rate and ETA are about."""
        self.started = self._last_log = self.clock()

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        text = f"{self.label}: {self.count:,}"
        if self.total is not None:
            share = self.count / self.total if self.total else 1.0
            text += f"/{self.total:,} {self.unit} ({share:.0%})"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.1f} {self.unit}/s"
        if self.total is not None and rate > 0 and self.count < self.total:
            text += f", ETA {_duration((self.total - self.count) / rate)}"
        return text

    def advance(self, amount: int = 1) -> None:
        self.count += amount
        now = self.clock()
        if now - self._last_log >= self.interval:
            self._last_log = now
            self.logger.info(self.line())

    def done(self) -> None:
        elapsed = self.clock() - self.started
        self.logger.info(
            "%s: done, %s %s in %s (%s %s/s)",
            self.label,
            f"{self.count:,}",
            self.unit,
            _duration(elapsed),
            f"{self.rate:,.1f}",
            self.unit,
        )
