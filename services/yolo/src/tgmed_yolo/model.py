"""The detection model: loaded offline-safe, identified by the hash of its weights, on
the best device there is."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def offline_defaults(config_dir: Path) -> None:
    """Ultralytics' own settings: no downloads, no pip installs, settings file in our
    folder. Must run before `ultralytics` is imported; a user's values win."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


def weights_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class Detector:
    model: Any  # ultralytics.YOLO
    name: str
    hash: str
    device: str
    half: bool

    @classmethod
    def load(cls, weights: str, device: str = "auto") -> Detector:
        import torch
        from ultralytics import YOLO

        path = Path(weights)
        if not path.is_file() and (path.parent != Path() or path.suffix not in {".pt"}):
            raise FileNotFoundError(
                f"model weights {weights!r} not found: set DETECT_MODEL to a weights file "
                "(offline, for example ../shared/models/yolov8n_int8.onnx)"
            )
        if device == "auto":
            device = "0" if torch.cuda.is_available() else "cpu"
        model = YOLO(str(path), task="detect")
        resolved = Path(getattr(model, "ckpt_path", None) or path)
        # half precision on a GPU, for PyTorch weights (an ONNX file has its own types)
        half = device != "cpu" and resolved.suffix == ".pt"
        detector = cls(model, resolved.name, weights_hash(resolved), device, half)
        log.info(
            "model %s (hash %s) on %s%s",
            detector.name,
            detector.hash,
            device,
            " (half precision)" if half else "",
        )
        return detector

    def predict(self, images: list, *, confidence: float, iou: float, image_size: int) -> list:
        """One result per image (BGR arrays): [(class id, class name, confidence, box)]."""
        if not images:
            return []
        results = self.model.predict(
            images,
            conf=confidence,
            iou=iou,
            imgsz=image_size,
            device=self.device,
            half=self.half,
            batch=len(images),
            verbose=False,
        )
        found = []
        for result in results:
            boxes = result.boxes
            classes = boxes.cls.cpu().numpy().astype(int).tolist()
            scores = boxes.conf.cpu().numpy().tolist()
            corners = boxes.xyxy.cpu().numpy().round(1).tolist()
            found.append(
                [
                    (cls_id, result.names[cls_id], round(float(score), 4), tuple(box))
                    for cls_id, score, box in zip(classes, scores, corners, strict=True)
                ]
            )
        return found
