"""Detect objects in every lake photo that has no record for the current model.

Three threads of work overlap: a small pool reads photo files and their headers; a
loader thread groups them by network input shape and prepares each group (decoding
and letterboxing, on the runtime's device); the main thread runs the network on the
previous group and writes records. A photo whose bytes were already detected by this
model (`photos.plan_work`) gets a copy of that record without running the model. A
file that cannot be decoded gets a `failed` record with the reason and the run goes
on. Records are written through the lake contract in group commits every
DETECT_COMMIT_EVERY images; a crash loses at most that much work, never a half file.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tgmed_common.atomic import AtomicBatch
from tgmed_common.lake import Lake, new_run_id
from tgmed_common.progress import Progress
from tgmed_common.records import Detection, DetectionRecord
from tgmed_yolo.model import load_detector
from tgmed_yolo.photos import Photo, Shard, plan_work
from tgmed_yolo.runtime import Batch, Detector, Loaded, describe, photo_size
from tgmed_yolo.settings import DetectSettings

log = logging.getLogger(__name__)


@dataclass
class DetectSummary:
    model: str = ""
    model_hash: str = ""
    device: str = ""
    runtime: str = ""
    precision: str = ""
    shard: str = "0/1"
    images: int = 0  # photos that got a record in this run: detected + reused
    detected: int = 0  # of them, run through the model (failed ones included)
    reused: int = 0  # of them, a copy of the record of the same bytes
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


def load_detector_for(settings: DetectSettings) -> Detector:
    return load_detector(
        settings.model,
        settings.device,
        runtime=settings.runtime,
        image_size=settings.image_size,
        rectangular=settings.rectangular,
        half=settings.half,
    )


# --- reading and batching -----------------------------------------------------------


def _load(photo: Photo) -> tuple[Photo, Loaded | None, str | None]:
    try:
        data = photo.path.read_bytes()
        height, width = photo_size(data)
    except Exception as error:
        return photo, None, describe(error)
    return photo, Loaded(photo, data, height, width), None


def _read_ahead(photos: list[Photo], pool: ThreadPoolExecutor, ahead: int) -> Iterator[tuple]:
    """`_load` of each photo, in order, at most `ahead` files in advance."""
    waiting: deque[Future] = deque()
    items = iter(photos)
    for photo in items:
        waiting.append(pool.submit(_load, photo))
        if len(waiting) >= ahead:
            break
    while waiting:
        future = waiting.popleft()
        following = next(items, None)
        if following is not None:
            waiting.append(pool.submit(_load, following))
        yield future.result()


class ShapeGroups:
    """Photos grouped by network input shape, at most `size` a group: a full group goes
    out at once; when more than `held` photos wait, the fullest group goes out as it is
    (mixed shapes never hold more than that in memory)."""

    def __init__(self, size: int, held: int) -> None:
        self.size, self.held = size, held
        self.groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
        self.waiting = 0

    def add(self, shape: tuple[int, int], item: Any) -> list[tuple[tuple[int, int], list]]:
        self.groups[shape].append(item)
        self.waiting += 1
        if len(self.groups[shape]) == self.size:
            return [self._take(shape)]
        if self.waiting > self.held:
            return [self._take(max(self.groups, key=lambda s: len(self.groups[s])))]
        return []

    def drain(self) -> list[tuple[tuple[int, int], list]]:
        return [self._take(shape) for shape in list(self.groups)]

    def _take(self, shape: tuple[int, int]) -> tuple[tuple[int, int], list]:
        group = self.groups.pop(shape)
        self.waiting -= len(group)
        return shape, group


class _Stop(Exception):
    pass


def prepared_batches(
    photos: list[Photo], detector: Detector, settings: DetectSettings
) -> Iterator[Batch]:
    """Batches ready for `detector.detect`, prepared in a loader thread up to two
    batches ahead of the consumer. Unreadable files come as batches with only
    `failed`. Closing the iterator stops the thread."""
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stop

    def work() -> None:
        size = min(settings.batch_size, detector.max_batch or settings.batch_size)
        groups = ShapeGroups(size, held=size * 4)
        try:
            with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="read") as pool:
                for photo, loaded, error in _read_ahead(photos, pool, settings.batch_size * 2):
                    if loaded is None:
                        put(Batch(failed=[(photo, error)]))
                        continue
                    shape = detector.input_shape(loaded.height, loaded.width)
                    for group_shape, group in groups.add(shape, loaded):
                        put(detector.prepare(group, group_shape))
                for group_shape, group in groups.drain():
                    put(detector.prepare(group, group_shape))
            put(done)
        except _Stop:
            pass
        except BaseException as error:  # handed to the consumer, raised there
            with contextlib.suppress(_Stop):
                put(error)

    thread = threading.Thread(target=work, name="detect-loader", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# --- records --------------------------------------------------------------------------


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


class _Recorder:
    """Turns outcomes into records, counts them, and copies them to reposts."""

    def __init__(self, lake: Lake, detector: Detector, summary: DetectSummary, writer) -> None:
        self.lake, self.detector, self.summary, self.writer = lake, detector, summary, writer
        self.progress: Progress | None = None

    def _common(self, photo: Photo) -> dict[str, Any]:
        channel, message_id = self.lake.media_owner(photo.path)
        return dict(
            channel_username=channel,
            message_id=message_id,
            media_path=photo.relative,
            model_name=self.detector.name,
            model_hash=self.detector.hash,
            detected_at=datetime.now(UTC),
            content_hash=photo.content_hash,
        )

    def add(self, record: DetectionRecord) -> None:
        summary = self.summary
        summary.images += 1
        if record.reused_from:
            summary.reused += 1
        else:
            summary.detected += 1
        if record.status == "failed":
            summary.failed += 1
            summary.failures[record.media_path] = record.error or ""
        summary.objects += len(record.detections)
        self.writer.add(record)
        if self.progress:
            self.progress.advance()

    def failed(self, photo: Photo, error: str) -> DetectionRecord:
        log.warning("cannot read %s: %s (recorded as failed)", photo.relative, error)
        record = DetectionRecord(**self._common(photo), status="failed", error=error)
        self.add(record)
        return record

    def found(self, photo: Photo, size: tuple[int, int], objects: list) -> DetectionRecord:
        record = DetectionRecord(
            **self._common(photo),
            image_height=size[0],
            image_width=size[1],
            detections=[
                Detection(class_id=c, class_name=n, confidence=min(1.0, s), box=b)
                for c, n, s, b in objects
            ],
        )
        self.add(record)
        return record

    def copy(self, photo: Photo, source: DetectionRecord) -> None:
        self.add(
            DetectionRecord(
                **self._common(photo),
                status=source.status,
                error=source.error,
                image_width=source.image_width,
                image_height=source.image_height,
                detections=source.detections,
                reused_from=source.reused_from or source.media_path,
            )
        )


def run_detection(
    lake: Lake,
    settings: DetectSettings,
    shard: Shard,
    detector: Detector | None = None,
    *,
    reuse: bool = True,
) -> DetectSummary:
    """reuse=False detects photos whose bytes were detected before (the benchmark's
    comparison); the stage always reuses."""
    started = time.monotonic()
    detector = detector or load_detector_for(settings)
    summary = DetectSummary(
        model=detector.name,
        model_hash=detector.hash,
        device=detector.device,
        runtime=detector.runtime,
        precision=detector.precision,
        shard=str(shard),
    )
    plan = plan_work(lake, detector.hash, shard, threads=settings.decode_threads, reuse=reuse)
    summary.already_done = plan.already_done
    log.info(
        "shard %s: %d photos to detect, %d reuse an earlier detection of the same bytes, "
        "%d already done with this model",
        shard,
        len(plan.detect),
        plan.reused,
        plan.already_done,
    )
    writer = RecordWriter(lake, new_run_id())
    recorder = _Recorder(lake, detector, summary, writer)
    recorder.progress = Progress(
        f"detect shard {shard}", unit="images", total=len(plan.detect) + plan.reused
    )
    for photo, source in plan.from_lake:
        recorder.copy(photo, source)

    def recorded(photo: Photo, record: DetectionRecord) -> None:
        for repost in plan.copies.pop(photo.content_hash, []) if photo.content_hash else []:
            recorder.copy(repost, record)
        if len(writer) >= settings.commit_every:
            writer.flush()

    for batch in prepared_batches(plan.detect, detector, settings):
        for photo, error in batch.failed:
            recorded(photo, recorder.failed(photo, error))
        found = detector.detect(batch, confidence=settings.confidence, iou=settings.iou)
        for photo, size, objects in zip(batch.keys, batch.sizes, found, strict=True):
            recorded(photo, recorder.found(photo, size, objects))
    if plan.copies:  # every source photo was in plan.detect: this cannot be left over
        raise RuntimeError(f"{len(plan.copies)} reposts left without their source's record")
    writer.flush()
    summary.files = writer.files
    summary.seconds = time.monotonic() - started
    recorder.progress.done()
    return summary
