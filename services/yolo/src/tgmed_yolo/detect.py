"""Detect objects in every lake photo that has no record for the current model.

Images are decoded by a small thread pool while the model runs on the previous batch,
so decoding (PIL releases the GIL) overlaps inference. A file that cannot be decoded
(corrupt, truncated, not an image) gets a `failed` record with the reason and the run
goes on. Records are written through the lake contract in group commits every
DETECT_COMMIT_EVERY images; a crash loses at most that much work, never a half file.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tgmed_common.atomic import AtomicBatch
from tgmed_common.lake import Lake, new_run_id
from tgmed_common.progress import Progress
from tgmed_common.records import Detection, DetectionRecord
from tgmed_yolo.model import Detector
from tgmed_yolo.photos import Shard, pending_photos
from tgmed_yolo.settings import DetectSettings

log = logging.getLogger(__name__)


@dataclass
class DetectSummary:
    model: str = ""
    model_hash: str = ""
    device: str = ""
    shard: str = "0/1"
    images: int = 0
    failed: int = 0
    objects: int = 0
    already_done: int = 0
    files: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body = dict(self.__dict__)
        body["failures"] = dict(list(self.failures.items())[:20])
        body["images_per_second"] = round(self.images / self.seconds, 2) if self.seconds else 0
        body["seconds"] = round(self.seconds, 2)
        return {"stage": "detect", **body}


PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


def _pillow_open():
    """Pillow's own Image.open. ultralytics replaces it process-wide with one that, on a
    file that is not an image, checks for (and would pip-install) a HEIF plugin, turning
    "not an image" into "No module named 'pi_heif'"."""
    opener = Image.open
    if getattr(opener, "__module__", "").startswith("ultralytics"):
        from ultralytics.utils import patches

        opener = getattr(patches, "_image_open", opener)
    return opener


_open_image = _pillow_open()


def decode(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(BGR array, None), or (None, why it cannot be read)."""
    try:
        with _open_image(path, formats=PHOTO_FORMATS) as image:
            image.load()  # raises on truncated or corrupt data, unlike a lazy open
            rgb = image.convert("RGB")
        return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]), None
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"


def _decoded(paths: list[Path], pool: ThreadPoolExecutor, ahead: int) -> Iterator[tuple]:
    """(path, array, error) in order, decoding at most `ahead` images in advance."""
    queue: deque[tuple[Path, Future]] = deque()
    items = iter(paths)
    for path in items:
        queue.append((path, pool.submit(decode, path)))
        if len(queue) >= ahead:
            break
    while queue:
        path, future = queue.popleft()
        following = next(items, None)
        if following is not None:
            queue.append((following, pool.submit(decode, following)))
        yield (path, *future.result())


def _batches(items: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class RecordWriter:
    """Detection records into the lake: one file per channel per commit."""

    def __init__(self, lake: Lake, run_id: str) -> None:
        self.lake = lake
        self.run_id = run_id
        self.pending: dict[str, list[DetectionRecord]] = defaultdict(list)
        self.part = 0
        self.files = 0

    def add(self, record: DetectionRecord) -> None:
        self.pending[record.channel_username].append(record)

    def __len__(self) -> int:
        return sum(len(v) for v in self.pending.values())

    def flush(self) -> None:
        if not self.pending:
            return
        self.part += 1
        today = datetime.now(UTC).date()
        batch = AtomicBatch()
        for channel, records in sorted(self.pending.items()):
            target = self.lake.detection_file(today, channel, f"{self.run_id}-{self.part:04d}")
            self.lake.write_records(target, records, batch)
        self.files += batch.commit()
        self.pending.clear()


def run_detection(
    lake: Lake, settings: DetectSettings, shard: Shard, detector: Detector | None = None
) -> DetectSummary:
    started = time.monotonic()
    detector = detector or Detector.load(settings.model, settings.device)
    summary = DetectSummary(
        model=detector.name, model_hash=detector.hash, device=detector.device, shard=str(shard)
    )
    pending, summary.already_done = pending_photos(lake, detector.hash, shard)
    log.info(
        "shard %s: %d photos to detect, %d already done with this model",
        shard,
        len(pending),
        summary.already_done,
    )
    progress = Progress(f"detect shard {shard}", unit="images", total=len(pending))
    writer = RecordWriter(lake, new_run_id())
    with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:
        stream = _decoded(pending, pool, ahead=settings.batch_size * 2)
        for batch in _batches(stream, settings.batch_size):
            readable = [(path, image) for path, image, _ in batch if image is not None]
            found = (
                detector.predict(
                    [image for _, image in readable],
                    confidence=settings.confidence,
                    iou=settings.iou,
                    image_size=settings.image_size,
                )
                if readable
                else []
            )
            results = {path: objects for (path, _), objects in zip(readable, found, strict=True)}
            now = datetime.now(UTC)
            for path, image, error in batch:
                channel, message_id = lake.media_owner(path)
                relative = lake.relative(path)
                common = dict(
                    channel_username=channel,
                    message_id=message_id,
                    media_path=relative,
                    model_name=detector.name,
                    model_hash=detector.hash,
                    detected_at=now,
                )
                if image is None:
                    summary.failed += 1
                    summary.failures[relative] = error
                    log.warning("cannot read %s: %s (recorded as failed)", relative, error)
                    writer.add(DetectionRecord(**common, status="failed", error=error))
                else:
                    objects = [
                        Detection(class_id=c, class_name=n, confidence=min(1.0, s), box=b)
                        for c, n, s, b in results[path]
                    ]
                    summary.objects += len(objects)
                    height, width = image.shape[:2]
                    writer.add(
                        DetectionRecord(
                            **common, image_width=width, image_height=height, detections=objects
                        )
                    )
                summary.images += 1
                progress.advance()
            if len(writer) >= settings.commit_every:
                writer.flush()
    writer.flush()
    summary.files = writer.files
    summary.seconds = time.monotonic() - started
    progress.done()
    return summary
