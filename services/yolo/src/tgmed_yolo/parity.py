"""Detection parity between a runtime and the reference: ultralytics' own predictor on
the model file, as the original design ran it on the CPU (ONNX Runtime, 640x640).

Two measures over the same photos, at the stage's confidence threshold:

- strict: detections kept by both at the threshold, paired one to one, same class and
  IoU >= 0.9; the share of all detections (either side) that found a pair;
- tolerant: each detection at or above the threshold, on either side, has a detection
  of the same class at IoU >= 0.9 on the other side at or above `floor` (a score that
  moved from 0.26 to 0.24 is the same box, not a disagreement).

Neither is exact for any pixel change: the reference engine itself, given the same
photos decoded and resized by another library (pixels off by one level), pairs 92% of
its detections strictly and 97% tolerantly (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tgmed_yolo.runtime import Detector, Found, Loaded, decode_rgb, photo_size

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Parity:
    strict_pairs: int = 0
    strict_total: int = 0
    tolerant_found: int = 0
    tolerant_total: int = 0
    unmatched: list[str] = field(default_factory=list)

    @property
    def strict(self) -> float:
        return self.strict_pairs / self.strict_total if self.strict_total else 1.0

    @property
    def tolerant(self) -> float:
        return self.tolerant_found / self.tolerant_total if self.tolerant_total else 1.0

    def __str__(self) -> str:
        return (
            f"strict {self.strict_pairs}/{self.strict_total} = {self.strict:.3f}, "
            f"tolerant {self.tolerant_found}/{self.tolerant_total} = {self.tolerant:.3f}"
        )


def compare(
    reference: list[list[Found]],
    candidate: list[list[Found]],
    *,
    threshold: float = 0.25,
    floor: float = 0.1,
    min_iou: float = 0.9,
) -> Parity:
    """Both sides detected at `floor` (NMS keeps the same boxes above any higher
    threshold, so filtering gives what a run at `threshold` gives)."""
    result = Parity()
    for photo, (ref, got) in enumerate(zip(reference, candidate, strict=True)):
        ref_kept = [d for d in ref if d[2] >= threshold]
        got_kept = [d for d in got if d[2] >= threshold]
        result.strict_total += max(len(ref_kept), len(got_kept))
        free = list(got_kept)
        for cls, name, score, box in sorted(ref_kept, key=lambda d: -d[2]):
            best = max(
                ((iou(box, other[3]), i) for i, other in enumerate(free) if other[0] == cls),
                default=(0.0, -1),
            )
            if best[0] >= min_iou:
                result.strict_pairs += 1
                free.pop(best[1])
            else:
                result.unmatched.append(f"photo {photo}: {name} {score:.2f} (IoU {best[0]:.2f})")
        result.unmatched += [f"photo {photo}: only in candidate {d[1]} {d[2]:.2f}" for d in free]
        for side, other in ((ref_kept, got), (got_kept, ref)):
            for cls, _, _, box in side:
                result.tolerant_total += 1
                result.tolerant_found += any(
                    o[0] == cls and iou(box, o[3]) >= min_iou for o in other
                )
    return result


def parity_photos(variants: int = 12) -> list[bytes]:
    """Distinct real photos: `variants` crops, flips and sizes of each sample source
    (tgmed-sample's pool: people, a cup, a cat, a motorcycle, ...) and ultralytics'
    bus.jpg and zidane.jpg."""
    import ultralytics

    from tgmed_sample.photos import SOURCES, PhotoPool

    pool = PhotoPool(seed=7, variants_per_source=variants)
    photos = [pool.jpeg(name, v)[0] for name in sorted(SOURCES) for v in range(variants)]
    assets = Path(ultralytics.__file__).parent / "assets"
    return photos + [(assets / name).read_bytes() for name in ("bus.jpg", "zidane.jpg")]


def reference_detections(model: Path, photos: list[bytes], floor: float = 0.1) -> list:
    """ultralytics' predictor on each photo (decoded by Pillow, as the stage decodes)."""
    from ultralytics import YOLO

    predictor = YOLO(str(model), task="detect")
    found = []
    for data in photos:
        bgr = np.ascontiguousarray(decode_rgb(data)[:, :, ::-1])
        (result,) = predictor.predict(bgr, conf=floor, iou=0.45, verbose=False)
        boxes = result.boxes
        found.append(
            [
                (int(c), result.names[int(c)], float(s), tuple(b))
                for c, s, b in zip(
                    boxes.cls.tolist(), boxes.conf.tolist(), boxes.xyxy.tolist(), strict=True
                )
            ]
        )
    return found


def runtime_detections(
    detector: Detector, photos: list[bytes], floor: float = 0.1, batch_size: int = 8
) -> list:
    """The runtime on the same photos, grouped by input shape in batches as the stage
    groups them."""
    found: list = [None] * len(photos)
    groups: dict[tuple[int, int], list[Loaded]] = {}
    for index, data in enumerate(photos):
        height, width = photo_size(data)
        shape = detector.input_shape(height, width)
        groups.setdefault(shape, []).append(Loaded(index, data, height, width))
    size = min(batch_size, detector.max_batch or batch_size)
    for shape, items in groups.items():
        for start in range(0, len(items), size):
            batch = detector.prepare(items[start : start + size], shape)
            assert not batch.failed, batch.failed
            for key, objects in zip(
                batch.keys, detector.detect(batch, confidence=floor, iou=0.45), strict=True
            ):
                found[key] = objects
    return found
