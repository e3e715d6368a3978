"""Per-channel high-water marks: the newest message id safely in the lake.

A mark only moves after the lake file holding that message has been written, so a
crash can make a run fetch a message twice but never skip one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from tgmed_common.atomic import AtomicBatch, write_bytes_atomic
from tgmed_common.lake import Lake


@dataclass(frozen=True)
class HighWaterMarks:
    lake: Lake
    stream: str

    def get(self, channel: str) -> int:
        path = self.lake.state_file(self.stream, channel)
        if not path.exists():
            return 0
        try:
            return int(json.loads(path.read_text())["last_message_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}: unreadable high-water mark ({error}); delete it to re-scan the "
                "channel (the loader de-duplicates, so nothing doubles)"
            ) from None

    def _body(self, channel: str, message_id: int) -> bytes:
        body = {
            "channel": channel,
            "last_message_id": message_id,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        return json.dumps(body).encode()

    def advance(self, channel: str, message_id: int) -> int:
        """Move the mark forward (never back); returns the mark now in force."""
        current = self.get(channel)
        if message_id <= current:
            return current
        write_bytes_atomic(
            self.lake.state_file(self.stream, channel), self._body(channel, message_id)
        )
        return message_id

    def stage(self, channel: str, message_id: int, batch: AtomicBatch) -> int:
        """Stage the forward move in `batch`, after the files already staged there: the
        mark is written before anything is published (a full disk fails the batch before
        any file of it appears) and published last. Returns the mark in force after the
        batch's commit."""
        current = self.get(channel)
        if message_id <= current:
            return current
        with batch.open(self.lake.state_file(self.stream, channel)) as stream:
            stream.write(self._body(channel, message_id))
        return message_id
