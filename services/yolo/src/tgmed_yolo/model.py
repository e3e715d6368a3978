"""The detection model: loaded offline-safe, identified by the hash of its weights, run
by the runtime that suits the device (runtime_onnx on the CPU, runtime_torch on CUDA)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from tgmed_yolo.runtime import Detector

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnxruntime", "torch")


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


def resolve_device(device: str) -> str:
    """auto: the first CUDA device when there is one, else the CPU; 0, 1, ...: cuda:N."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.isdigit():
        device = f"cuda:{device}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"DETECT_DEVICE={device}: this machine has no CUDA device")
    return device


def load_detector(
    weights: str,
    device: str = "auto",
    *,
    runtime: str = "auto",
    image_size: int = 640,
    rectangular: bool = False,
    half: bool | None = None,
) -> Detector:
    """The model behind `weights` on `device`. Runtime auto: PyTorch on CUDA (and for
    .pt checkpoints), ONNX Runtime for an ONNX file on the CPU."""
    path = Path(weights)
    if not path.is_file() and (path.parent != Path() or path.suffix != ".pt"):
        raise FileNotFoundError(
            f"model weights {weights!r} not found: set DETECT_MODEL to a weights file "
            "(offline, for example ../shared/models/yolov8n_int8.onnx)"
        )
    if path.suffix not in {".onnx", ".pt"}:
        raise ValueError(f"model weights {weights!r}: expected an .onnx export or a .pt file")
    if runtime not in RUNTIMES:
        raise ValueError(f"DETECT_RUNTIME={runtime!r}: expected one of {', '.join(RUNTIMES)}")
    device = resolve_device(device)
    if runtime == "auto":
        runtime = "torch" if device != "cpu" or path.suffix == ".pt" else "onnxruntime"
    if runtime == "onnxruntime" and (device != "cpu" or path.suffix != ".onnx"):
        raise ValueError(
            "DETECT_RUNTIME=onnxruntime runs .onnx files on the CPU (DETECT_DEVICE=cpu); "
            "use DETECT_RUNTIME=torch for CUDA or .pt weights"
        )
    detector: Detector
    if runtime == "onnxruntime":
        from tgmed_yolo.runtime_onnx import OnnxRuntimeDetector

        detector = OnnxRuntimeDetector(
            path, path.name, weights_hash(path), image_size=image_size, rectangular=rectangular
        )
    else:
        from tgmed_yolo.runtime_torch import (
            TorchDetector,
            module_from_checkpoint,
            module_from_onnx,
        )

        if path.suffix == ".onnx":
            module, names = module_from_onnx(path)
        else:
            module, names, path = module_from_checkpoint(weights)
        detector = TorchDetector(
            module,
            names,
            path.name,
            weights_hash(path),
            device=device,
            half=half,
            image_size=image_size,
            rectangular=rectangular,
        )
    log.info(
        "model %s (hash %s): %s on %s, %s%s",
        detector.name,
        detector.hash,
        detector.runtime,
        detector.device,
        detector.precision,
        ", rectangular inputs" if getattr(detector, "rectangular", False) else "",
    )
    return detector
