"""One writer per channel at a time, and the leftovers of a writer that died swept away.

A scrape or an import holds the channel's lock (`state/locks/channel=<name>.lock`, an
advisory `flock`) while it writes that channel's files. The kernel releases the lock
when the process ends in any way, SIGKILL included, so whoever takes it next knows no
live process is writing the channel: temporary files left in the channel's folders
(a write cut short) are orphans, and are removed before anything new is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from tgmed_common.lake import Lake
from tgmed_common.records import canonical_channel

log = logging.getLogger(__name__)


class ChannelBusy(RuntimeError):
    """Another process is writing this channel right now."""


@dataclass
class ChannelHold:
    channel: str
    swept: int  # orphaned temporary files removed when the lock was taken


@contextlib.contextmanager
def hold_channel(lake: Lake, channel: str) -> Iterator[ChannelHold]:
    """Take the channel's lock (or raise ChannelBusy at once), sweep orphaned temporary
    files, and hold the lock until the block ends."""
    channel = canonical_channel(channel)
    path = lake.lock_file(channel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ChannelBusy(
                f"channel {channel}: another process is writing this channel "
                f"(it holds {path}); wait for it to finish, then run again"
            ) from None
        swept = 0
        for orphan in lake.channel_temp_files(channel):
            with contextlib.suppress(FileNotFoundError):
                orphan.unlink()
                swept += 1
        if swept:
            log.warning(
                "channel %s: removed %d temporary file(s) left by an earlier run that "
                "did not finish (nothing it had committed is affected)",
                channel,
                swept,
            )
        yield ChannelHold(channel, swept)
    finally:
        os.close(fd)  # releases the lock
