"""The one way the scraper and the importer put messages in the lake: in batches, one
immutable file per (day, channel) partition per batch, photos staged in the same batch,
everything published with one group commit, and the channel's high-water mark staged in
the same batch and published last (so it never passes a file that is not there, and a
full disk fails the batch before any of it is published)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from tgmed_common.atomic import AtomicBatch
from tgmed_common.lake import Lake
from tgmed_common.records import MessageRecord
from tgmed_common.state import HighWaterMarks

log = logging.getLogger(__name__)


@dataclass
class MessageBatchWriter:
    lake: Lake
    marks: HighWaterMarks
    channel: str
    run_id: str
    pending: list[MessageRecord] = field(default_factory=list)
    written: int = 0
    files: int = 0
    seen: int = 0  # newest id handed to the writer, records or skipped (service) messages
    batch: AtomicBatch = field(default_factory=AtomicBatch)  # photos staged by the caller
    _part: int = 0

    def add(self, record: MessageRecord) -> None:
        self.pending.append(record)
        self.seen = max(self.seen, record.message_id)

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
            self.pending = []
            self.seen = self.marks.get(self.channel)
            raise

    def _flush(self) -> int:
        if not self.pending:
            if self.seen:
                self.marks.stage(self.channel, self.seen, self.batch)
            self.batch.commit()
            return 0
        by_day: dict = defaultdict(list)
        for record in self.pending:
            by_day[record.date.date()].append(record)
        self._part += 1
        stem = f"{self.run_id}-{self._part:04d}"
        for day in sorted(by_day):
            rows = sorted(by_day[day], key=lambda r: r.message_id)
            self.lake.write_records(
                self.lake.message_file(day, self.channel, stem), rows, self.batch
            )
        # the mark is staged last: written before anything is published (a full disk
        # fails here, with nothing published), renamed into place after the files
        newest = self.marks.stage(self.channel, self.seen, self.batch)
        self.batch.commit()
        self.files += len(by_day)
        count = len(self.pending)
        self.written += count
        self.pending = []
        log.debug("%s: wrote %d messages, high-water mark %d", self.channel, count, newest)
        return count
