"""The one way the scraper and the importer put messages in the lake: in batches, one
immutable file per (day, channel) partition per batch, photos, the observations of the
messages' counts and the channel's snapshot staged in the same batch, everything
published with one group commit, and the channel's high-water mark moved only after
the commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from tgmed_common.atomic import AtomicBatch
from tgmed_common.lake import Lake
from tgmed_common.records import ChannelSnapshotRecord, MessageObservationRecord, MessageRecord
from tgmed_common.state import HighWaterMarks

log = logging.getLogger(__name__)


@dataclass
class MessageBatchWriter:
    lake: Lake
    marks: HighWaterMarks
    channel: str
    run_id: str
    pending: list[MessageRecord] = field(default_factory=list)
    observations: list[MessageObservationRecord] = field(default_factory=list)
    snapshots: list[ChannelSnapshotRecord] = field(default_factory=list)
    written: int = 0  # message records committed
    refreshed_written: int = 0  # of which re-reads of messages at or below the mark
    observations_written: int = 0
    snapshots_written: int = 0
    files: int = 0
    seen: int = 0  # newest id handed to the writer, records or skipped (service) messages
    batch: AtomicBatch = field(default_factory=AtomicBatch)  # photos staged by the caller
    _part: int = 0
    _pending_refreshed: int = 0

    def add(
        self,
        record: MessageRecord,
        observation: MessageObservationRecord | None = None,
        *,
        refreshed: bool = False,
    ) -> None:
        """A message record (and the observation of its counts). A refreshed record (a
        re-read of a message at or below the high-water mark) is written too, and
        leaves the mark where it is."""
        self.pending.append(record)
        if observation is not None:
            self.observations.append(observation)
        if refreshed:
            self._pending_refreshed += 1
        else:
            self.seen = max(self.seen, record.message_id)

    def add_snapshot(self, snapshot: ChannelSnapshotRecord) -> None:
        self.snapshots.append(snapshot)

    def skip(self, message_id: int) -> None:
        """A message with nothing to store (a service message): the mark may pass it
        once everything before it is written."""
        self.seen = max(self.seen, message_id)

    def flush(self) -> int:
        """Write pending records (and the staged photos), then advance the mark to the
        newest id seen. If writing fails nothing of the batch is kept and the mark stays
        where it was: those messages are fetched again on the next run."""
        try:
            return self._flush()
        except BaseException:
            self.batch.abort()
            self.pending, self.observations, self.snapshots = [], [], []
            self._pending_refreshed = 0
            self.seen = self.marks.get(self.channel)
            raise

    def _stage(
        self,
        records: list,
        day_of: Callable[[BaseModel], date],
        path_of: Callable[[date, str, str], Path],
        stem: str,
    ) -> int:
        """One file per day partition, staged in the batch; returns the files."""
        by_day: dict = defaultdict(list)
        for record in records:
            by_day[day_of(record)].append(record)
        for day in sorted(by_day):
            rows = sorted(by_day[day], key=lambda r: getattr(r, "message_id", 0))
            self.lake.write_records(path_of(day, self.channel, stem), rows, self.batch)
        return len(by_day)

    def _flush(self) -> int:
        if not (self.pending or self.observations or self.snapshots):
            self.batch.commit()
            if self.seen:
                self.marks.advance(self.channel, self.seen)
            return 0
        self._part += 1
        stem = f"{self.run_id}-{self._part:04d}"
        files = self._stage(self.pending, lambda r: r.date.date(), self.lake.message_file, stem)
        files += self._stage(
            self.observations, lambda r: r.observed_at.date(), self.lake.observation_file, stem
        )
        files += self._stage(
            self.snapshots, lambda r: r.observed_at.date(), self.lake.snapshot_file, stem
        )
        self.batch.commit()
        self.files += files
        count = len(self.pending)
        newest = self.marks.advance(self.channel, self.seen) if self.seen else 0
        self.written += count
        self.refreshed_written += self._pending_refreshed
        self.observations_written += len(self.observations)
        self.snapshots_written += len(self.snapshots)
        self.pending, self.observations, self.snapshots = [], [], []
        self._pending_refreshed = 0
        log.debug("%s: wrote %d messages, high-water mark %d", self.channel, count, newest)
        return count
