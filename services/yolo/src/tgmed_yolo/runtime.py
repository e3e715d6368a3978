"""What every detection runtime shares: the interface the stage drives, how a photo's
bytes become pixels, the letterbox geometry, and ultralytics' own post-processing.

A runtime turns a group of loaded photos (bytes and size, all with the same input
shape) into one input batch (`prepare`: decode and letterbox, on its device), then
into detections (`detect`: the network, non-maximum suppression, boxes scaled back to
the photo). `prepare` runs in a loader thread while `detect` runs the previous batch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
PAD_VALUE = 114  # ultralytics' letterbox grey
MAX_DETECTIONS = 300  # ultralytics' default max_det

# (class id, class name, confidence, (x1, y1, x2, y2) in the photo's pixels)
Found = tuple[int, str, float, tuple[float, float, float, float]]


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


def photo_size(data: bytes) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding its pixels; raises
    (Pillow's error) on a file that is not a photo."""
    with _open_image(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
        width, height = image.size
    return height, width


def decode_rgb(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Raises on truncated or corrupt data: Pillow's `load()` does,
    where OpenCV would decode a cut JPEG half grey."""
    with _open_image(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
        image.load()
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def input_shape(
    height: int, width: int, size: int, stride: int, rectangular: bool
) -> tuple[int, int]:
    """The network input a photo is letterboxed into: (size, size), or with a graph that
    takes any shape the smallest stride multiple around the scaled photo (ultralytics'
    `LetterBox(auto=True)`: a 4:3 photo at size 640 runs as 480x640)."""
    if not rectangular:
        return size, size
    ratio = min(size / height, size / width)
    new_h, new_w = max(round(height * ratio), 1), max(round(width * ratio), 1)
    return new_h + (size - new_h) % stride, new_w + (size - new_w) % stride


def placement(height: int, width: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(resized height, resized width, top, left) of a photo letterboxed into `shape`,
    exactly as ultralytics' LetterBox places it (and `scale_boxes` undoes it)."""
    ratio = min(shape[0] / height, shape[1] / width)
    new_h, new_w = max(round(height * ratio), 1), max(round(width * ratio), 1)
    top = round((shape[0] - new_h) / 2 - 0.1)
    left = round((shape[1] - new_w) / 2 - 0.1)
    return new_h, new_w, top, left


@dataclass
class Loaded:
    """A photo read from the lake: its bytes and header size, on its way to a batch."""

    key: Any
    data: bytes
    height: int
    width: int


@dataclass
class Batch:
    """One network input: `inputs` holds the readable photos (`keys`, `sizes`) in one
    tensor; `failed` the photos that could not be decoded, with why."""

    shape: tuple[int, int] = (0, 0)
    keys: list[Any] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    inputs: Any = None
    failed: list[tuple[Any, str]] = field(default_factory=list)
    ready: Any = None  # a CUDA event the inputs are complete at (GPU runtimes)


class Detector(Protocol):
    name: str  # the weights file's name
    hash: str  # its sha256 (16 hex): the model's identity in records
    device: str
    runtime: str
    precision: str
    names: dict[int, str]
    max_batch: int | None  # photos per network run where the graph needs a limit

    def input_shape(self, height: int, width: int) -> tuple[int, int]: ...

    def prepare(self, group: list[Loaded], shape: tuple[int, int]) -> Batch: ...

    def detect(self, batch: Batch, *, confidence: float, iou: float) -> list[list[Found]]: ...


def postprocess(
    raw: Any, batch: Batch, names: dict[int, str], *, confidence: float, iou: float
) -> list[list[Found]]:
    """ultralytics' NMS and box scaling on the network's (B, 4 + classes, anchors)
    output (a torch tensor on any device): the boxes its own predictor would give."""
    import torch
    from ultralytics.utils import nms, ops

    kept = nms.non_max_suppression(raw, confidence, iou, max_det=MAX_DETECTIONS)
    # one transfer from the device for the whole batch, not one per photo
    counts = [len(k) for k in kept]
    merged = torch.cat(kept).double().cpu().numpy() if sum(counts) else np.zeros((0, 6))
    found, start = [], 0
    for count, size in zip(counts, batch.sizes, strict=True):
        detections, start = merged[start : start + count], start + count
        boxes = ops.scale_boxes(batch.shape, detections[:, :4].copy(), size).round(1)
        found.append(
            [
                (int(cls_id), names[int(cls_id)], round(float(score), 4), tuple(box.tolist()))
                for cls_id, score, box in zip(
                    detections[:, 5], detections[:, 4], boxes, strict=True
                )
            ]
        )
    return found
