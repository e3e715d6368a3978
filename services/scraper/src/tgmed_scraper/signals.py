"""SIGTERM and SIGINT end a scrape or an import cleanly: the work in progress is
cancelled (an async scrape) or interrupted (the synchronous importer), so every
temporary file is removed and what was completely fetched is committed on the way out.
The process then exits with 128 + the signal's number, as if the signal had killed it,
after its summary line. (SIGKILL cannot be caught: the next start sweeps what it left,
see tgmed_common.channel_lock.)"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from tgmed_scraper.errors import Interrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self) -> None:
        self.received: signal.Signals | None = None

    @property
    def exit_code(self) -> int | None:
        return 128 + self.received if self.received is not None else None

    def interrupted(self) -> Interrupted:
        assert self.received is not None
        return Interrupted(self.received.name)

    @contextlib.contextmanager
    def cancelling(self, task: asyncio.Task) -> Iterator[None]:
        """Inside a running event loop: a stop signal cancels `task`."""
        loop = asyncio.get_running_loop()

        def stop(which: signal.Signals) -> None:
            if self.received is None:
                self.received = which
                task.cancel()

        for which in STOP_SIGNALS:
            loop.add_signal_handler(which, stop, which)
        try:
            yield
        finally:
            for which in STOP_SIGNALS:
                loop.remove_signal_handler(which)

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Synchronous code: a stop signal raises Interrupted where the code is."""

        def stop(number: int, _frame: FrameType | None) -> None:
            if self.received is None:
                self.received = signal.Signals(number)
                raise self.interrupted()

        previous = {which: signal.signal(which, stop) for which in STOP_SIGNALS}
        try:
            yield
        finally:
            for which, handler in previous.items():
                signal.signal(which, handler)
