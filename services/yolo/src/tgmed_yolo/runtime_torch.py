"""The GPU runtime: the network as a PyTorch module, in half precision on CUDA, with
JPEG decoding (nvJPEG) and letterboxing on the device. It runs on the CPU too (fp32),
which is how its parity with the CPU runtime is tested where there is no GPU.

The module is ultralytics' own (`DetectionModel` from the architecture's config, fused
like an export): from a `.pt` checkpoint as it is, or from an ONNX export with every
weight dequantized once (`onnx_graph.dequantized_weights`). Every weight of the module
must come from the file, with its shape, or loading fails: no weight is ever guessed.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tgmed_yolo.onnx_graph import dequantized_weights, export_info
from tgmed_yolo.runtime import (
    PAD_VALUE,
    Batch,
    Found,
    Loaded,
    decode_rgb,
    describe,
    input_shape,
    placement,
    postprocess,
)

log = logging.getLogger(__name__)

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
# torchvision 0.29 warns on every decode that TorchCodec supersedes its image decoders;
# its decode_jpeg (nvJPEG on CUDA, bundled in its wheel) is what this stage carries
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning
)


def whole_jpeg(data: bytes) -> bool:
    """A JPEG with its end marker: nvJPEG would decode a cut one half grey, so anything
    else goes through Pillow, which names the fault."""
    return data[:2] == JPEG_START and data.rstrip(b"\0")[-2:] == JPEG_END


def module_from_onnx(path: Path) -> tuple[Any, dict[int, str]]:
    import onnx
    import torch
    from ultralytics.nn.tasks import DetectionModel

    graph = onnx.load(str(path))
    info = export_info(graph)
    if not info.architecture:
        raise ValueError(
            f"{path.name}: the export does not name its architecture (metadata "
            "'description'); run it with DETECT_RUNTIME=onnxruntime"
        )
    module = DetectionModel(f"{info.architecture}.yaml", nc=len(info.names), verbose=False)
    module = module.fuse(verbose=False)  # exports fold batch norm into the convolutions
    weights = dequantized_weights(graph)
    expected = module.state_dict()
    wrong = [
        name
        for name, tensor in expected.items()
        if name not in weights or tuple(weights[name].shape) != tuple(tensor.shape)
    ]
    if wrong:
        raise ValueError(
            f"{path.name}: its weights do not fit ultralytics' {info.architecture} network "
            f"({len(wrong)} of {len(expected)} missing or of another shape, e.g. {wrong[:3]}); "
            "run it with DETECT_RUNTIME=onnxruntime"
        )
    module.load_state_dict({name: torch.from_numpy(weights[name]) for name in expected})
    module.names = info.names
    return module, info.names


def module_from_checkpoint(weights: str) -> tuple[Any, dict[int, str], Path]:
    from ultralytics import YOLO

    model = YOLO(weights, task="detect")  # a bare name like yolov8n.pt downloads if allowed
    module = model.model.float().fuse(verbose=False)
    resolved = Path(getattr(model, "ckpt_path", None) or weights)
    return module, dict(model.names), resolved


class TorchDetector:
    runtime = "torch"
    max_batch = None  # every photo's result is its own, whatever the batch

    def __init__(
        self,
        module: Any,
        names: dict[int, str],
        name: str,
        digest: str,
        *,
        device: str,
        half: bool | None = None,
        image_size: int = 640,
        rectangular: bool = False,
    ) -> None:
        import torch

        self.name, self.hash, self.names = name, digest, names
        self.torch_device = torch.device(device)
        self.device = str(self.torch_device)
        cuda = self.torch_device.type == "cuda"
        self.half = cuda if half is None else half
        self.precision = "fp16" if self.half else "fp32"
        self.dtype = torch.float16 if self.half else torch.float32
        self.image_size = image_size
        self.rectangular = rectangular
        self.stride = int(max(getattr(module, "stride", torch.tensor([32])).max(), 32))
        module = module.to(self.torch_device, self.dtype).eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        self.module = module.to(memory_format=torch.channels_last)
        if cuda:
            torch.backends.cudnn.benchmark = True  # a few input shapes, each tuned once
            self.load_stream = torch.cuda.Stream(self.torch_device)

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        return input_shape(height, width, self.image_size, self.stride, self.rectangular)

    def _decode(self, group: list[Loaded]) -> list[tuple[Any, Any]]:
        """(uint8 (3, H, W) tensor on the device, or None; error) per photo. Whole
        JPEGs are decoded together by torchvision (nvJPEG on CUDA, libjpeg-turbo on the
        CPU); other formats, cut files and anything it refuses by Pillow."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        decoded: list[tuple[Any, Any]] = [(None, None)] * len(group)
        jpegs = [i for i, item in enumerate(group) if whole_jpeg(item.data)]
        if jpegs:
            raw = [torch.frombuffer(bytearray(group[i].data), dtype=torch.uint8) for i in jpegs]
            try:
                images = decode_jpeg(raw, mode=ImageReadMode.RGB, device=self.torch_device)
            except RuntimeError as error:
                log.debug("batch JPEG decode refused (%s); decoding one by one", error)
                images = [None] * len(jpegs)
            for i, image in zip(jpegs, images, strict=True):
                decoded[i] = (image, None)
        for i, item in enumerate(group):
            if decoded[i][0] is not None:
                continue
            try:
                array = decode_rgb(item.data)
            except Exception as error:
                decoded[i] = (None, describe(error))
                continue
            tensor = torch.from_numpy(array).permute(2, 0, 1)
            decoded[i] = (tensor.to(self.torch_device, non_blocking=True), None)
        return decoded

    def prepare(self, group: list[Loaded], shape: tuple[int, int]) -> Batch:
        import torch

        cuda = self.torch_device.type == "cuda"
        with torch.inference_mode(), torch.cuda.stream(self.load_stream) if cuda else nullcontext():
            batch = Batch(shape=shape)
            images = []
            for item, (image, error) in zip(group, self._decode(group), strict=True):
                if image is None:
                    batch.failed.append((item.key, error))
                    continue
                images.append(image)
                batch.keys.append(item.key)
                batch.sizes.append((int(image.shape[1]), int(image.shape[2])))
            if images:
                batch.inputs = self._letterbox(images, shape)
            if cuda:
                batch.ready = torch.cuda.Event()
                batch.ready.record(self.load_stream)
        return batch

    def _letterbox(self, images: list, shape: tuple[int, int]) -> Any:
        """One (N, 3, H, W) input on the device: each photo resized (bilinear, like
        OpenCV's) and centred on the grey, scaled to 0..1, in the network's precision."""
        import torch
        import torch.nn.functional as F

        out = torch.full(
            (len(images), 3, *shape), PAD_VALUE / 255, dtype=self.dtype, device=self.torch_device
        )
        for index, image in enumerate(images):
            height, width = image.shape[1:]
            new_h, new_w, top, left = placement(height, width, shape)
            pixels = image.unsqueeze(0).float()
            if (new_h, new_w) != (height, width):
                pixels = F.interpolate(
                    pixels, size=(new_h, new_w), mode="bilinear", align_corners=False
                )
            region = out[index, :, top : top + new_h, left : left + new_w]
            region.copy_(pixels[0].clamp_(0, 255).round_().div_(255))
        return out.contiguous(memory_format=torch.channels_last)

    def run(self, inputs: Any) -> Any:
        """The bare network on one prepared input (what the benchmark loops over)."""
        import torch

        with torch.inference_mode():
            output = self.module(inputs)
        return output[0] if isinstance(output, (list, tuple)) else output

    def detect(self, batch: Batch, *, confidence: float, iou: float) -> list[list[Found]]:
        import torch

        if batch.inputs is None:
            return []
        if batch.ready is not None:
            current = torch.cuda.current_stream(self.torch_device)
            current.wait_event(batch.ready)
            batch.inputs.record_stream(current)  # made on the loader's stream, used here
        raw = self.run(batch.inputs)
        return postprocess(raw, batch, self.names, confidence=confidence, iou=iou)
