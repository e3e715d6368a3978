"""Detection configuration, from the environment (see .env.example).

Ultralytics reads its own YOLO_* variables; the stage sets offline-safe defaults for
them before importing it (YOLO_OFFLINE=1, YOLO_AUTOINSTALL=false, YOLO_CONFIG_DIR inside
the lake's parent folder), so nothing reaches the network unless a user asks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from tgmed_common.settings import env_config


class DetectSettings(BaseSettings):
    model_config = env_config("DETECT_")

    model: str = "yolov8n.pt"
    """Weights file (.pt, .onnx, ...). Real users get yolov8n.pt the usual way; offline
    machines point this at a local file."""
    confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    iou: float = Field(default=0.45, ge=0.0, le=1.0)
    image_size: int = Field(default=640, ge=32)
    batch_size: int = Field(default=16, ge=1)
    device: str = "auto"
    """auto (CUDA when there is one, half precision there; CPU otherwise), cpu, 0, 1..."""
    runtime: Literal["auto", "onnxruntime", "torch"] = "auto"
    """auto: PyTorch on CUDA (and for .pt weights), ONNX Runtime for .onnx on the CPU."""
    rectangular: bool = False
    """true: letterbox each photo into the smallest stride multiple around it (a 4:3
    photo as 480x640, fewer pixels) instead of image_size x image_size. Off by default:
    its detections miss the parity bar with the square input (docs/benchmarks.md)."""
    half: bool | None = None
    """Half precision (torch runtime); empty or auto: on CUDA yes, on the CPU no."""

    @field_validator("half", mode="before")
    @classmethod
    def _auto_half(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in {"", "auto"} else value

    decode_threads: int = Field(default=2, ge=1)
    """Threads reading (and hashing) photo files while the model runs."""
    commit_every: int = Field(default=256, ge=1)
    """Images per lake write (a crash loses at most this many images' work)."""
