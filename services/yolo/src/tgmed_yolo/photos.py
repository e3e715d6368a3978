"""Which lake photos still need detecting, for one model and one shard."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from tgmed_common.lake import Lake, LakeRecordError, read_detections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected i/n, for example 0/2") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--shard {text!r}: need 0 <= i < n")
        return cls(index, count)

    def owns(self, relative_path: str) -> bool:
        """Stable across runs and machines: a hash of the lake path, not Python's hash()."""
        digest = hashlib.blake2b(relative_path.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def detected_paths(lake: Lake, model_hash: str) -> set[str]:
    """Media paths that already have a record for this model (ok or failed)."""
    done: set[str] = set()
    for path in lake.detection_files():
        try:
            done.update(r.media_path for r in read_detections(path) if r.model_hash == model_hash)
        except LakeRecordError as error:  # the loader quarantines it; not ours to judge
            log.warning("skipping unreadable detection file: %s", error)
    return done


def pending_photos(lake: Lake, model_hash: str, shard: Shard) -> tuple[list[Path], int]:
    """Photos of this shard with no record for this model, and how many already had one."""
    done = detected_paths(lake, model_hash)
    pending, already = [], 0
    for path in lake.media_files():
        relative = lake.relative(path)
        if not shard.owns(relative):
            continue
        if relative in done:
            already += 1
        else:
            pending.append(path)
    return pending, already
