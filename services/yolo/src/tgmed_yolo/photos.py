"""Which lake photos still need a record for one model and one shard, and which of
them the model must actually see.

A photo's identity for detection is its content: the sha256 of the file's bytes. A
photo whose bytes already have a record for the current model (a repost, a forward,
the same photo in another channel's album) reuses that record; of several photos with
the same new bytes only the first (in lake order) goes through the model. Shards split
the pending photos by that content hash, so two shards never run the same bytes; the
photos already done are counted by a hash of their lake path, without reading them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tgmed_common.lake import Lake, LakeRecordError, read_detections
from tgmed_common.records import DetectionRecord

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

    def owns(self, key: str) -> bool:
        """Stable across runs and machines: a hash of the key, not Python's hash()."""
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Photo:
    path: Path
    relative: str  # lake-relative, as records name it
    content_hash: str | None  # None: the file could not be read (its record says why)


@dataclass
class WorkPlan:
    """What one run does: photos for the model, and photos whose record is a copy."""

    detect: list[Photo] = field(default_factory=list)
    # content hash -> later photos with those bytes, copying the record of the one in
    # `detect` once the model has run on it
    copies: dict[str, list[Photo]] = field(default_factory=dict)
    # photos whose bytes have a record for this model in the lake already
    from_lake: list[tuple[Photo, DetectionRecord]] = field(default_factory=list)
    already_done: int = 0

    @property
    def reused(self) -> int:
        return len(self.from_lake) + sum(len(v) for v in self.copies.values())


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_or_none(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError as error:
        log.warning("cannot read %s: %s", path, error)
        return None


def model_records(lake: Lake, model_hash: str) -> Iterable[DetectionRecord]:
    for path in lake.detection_files():
        try:
            yield from (r for r in read_detections(path) if r.model_hash == model_hash)
        except LakeRecordError as error:  # the loader quarantines it; not ours to judge
            log.warning("skipping unreadable detection file: %s", error)


def detected_paths(lake: Lake, model_hash: str) -> set[str]:
    """Media paths that already have a record for this model (ok or failed)."""
    return {record.media_path for record in model_records(lake, model_hash)}


def plan_work(
    lake: Lake, model_hash: str, shard: Shard, *, threads: int = 2, reuse: bool = True
) -> WorkPlan:
    """reuse=False (for measuring what reuse saves): every pending photo is detected."""
    done: set[str] = set()
    by_content: dict[str, DetectionRecord] = {}
    for record in model_records(lake, model_hash):
        done.add(record.media_path)
        if record.content_hash and record.content_hash not in by_content:
            by_content[record.content_hash] = record
    plan = WorkPlan()
    pending: list[tuple[Path, str]] = []
    for path in lake.media_files():
        relative = lake.relative(path)
        if relative in done:
            plan.already_done += shard.owns(relative)
        else:
            pending.append((path, relative))
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="hash") as pool:
        hashes = list(pool.map(_hash_or_none, [path for path, _ in pending]))
    for (path, relative), digest in zip(pending, hashes, strict=True):
        if not shard.owns(digest or relative):
            continue
        photo = Photo(path, relative, digest)
        if digest is None or not reuse:
            plan.detect.append(photo)
        elif digest in by_content:
            plan.from_lake.append((photo, by_content[digest]))
        elif digest in plan.copies:
            plan.copies[digest].append(photo)
        else:
            plan.copies[digest] = []
            plan.detect.append(photo)
    plan.copies = {digest: photos for digest, photos in plan.copies.items() if photos}
    return plan
