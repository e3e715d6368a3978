"""Per-channel high-water marks: the newest message id safely in the lake.

A mark only moves after the lake file holding that message has been written, so a
crash can make a run fetch a message twice but never skip one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from tgmed_common.atomic import write_bytes_atomic
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

    def advance(self, channel: str, message_id: int) -> int:
        """Move the mark forward (never back); returns the mark now in force."""
        current = self.get(channel)
        if message_id <= current:
            return current
        body = {
            "channel": channel,
            "last_message_id": message_id,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        write_bytes_atomic(self.lake.state_file(self.stream, channel), json.dumps(body).encode())
        return message_id
