"""The CPU runtime: ONNX Runtime on the export itself (the shared int8 model runs as its
file says: integer convolutions), through the export's twin that takes any input shape
when the graph allows one, so a batch of 4:3 photos runs as 480x640."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tgmed_yolo.onnx_graph import (
    ANCHORS_INPUT,
    STRIDES_INPUT,
    UnsupportedGraph,
    anchors_for,
    dynamic_twin,
    export_info,
    is_static,
    uint8_input,
)
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


def letterbox(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 into `shape`, resized with OpenCV's bilinear filter and padded
    grey around the centre, as ultralytics' LetterBox does (the same pixels)."""
    import cv2

    height, width = image.shape[:2]
    new_h, new_w, top, left = placement(height, width, shape)
    if (new_h, new_w) != (height, width):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    bottom, right = shape[0] - new_h - top, shape[1] - new_w - left
    grey = (PAD_VALUE,) * 3
    return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=grey)


class OnnxRuntimeDetector:
    runtime = "onnxruntime"
    device = "cpu"

    def __init__(
        self, path: Path, name: str, digest: str, *, image_size: int, rectangular: bool = False
    ) -> None:
        import onnx
        import onnxruntime

        graph = onnx.load(str(path))
        info = export_info(graph)
        self.name, self.hash, self.names = name, digest, info.names
        self.stride = info.stride
        self.precision = (
            "int8" if any(n.op_type == "ConvInteger" for n in graph.graph.node) else "fp32"
        )
        # An int8 export quantizes each layer's input with the range of the whole input
        # tensor (DynamicQuantizeLinear): in a batch, a photo's result would depend on
        # the photos beside it. Such graphs run one photo at a time.
        quantized_inputs = any(n.op_type == "DynamicQuantizeLinear" for n in graph.graph.node)
        self.max_batch: int | None = 1 if quantized_inputs else None
        self.feeds_anchors = False
        shapes_free = not is_static(graph)
        if not shapes_free and (rectangular or self.max_batch is None):
            try:  # the twin: any shape (rectangular inputs), any batch
                graph = dynamic_twin(graph)
                shapes_free = self.feeds_anchors = True
            except UnsupportedGraph as why:
                log.warning("%s runs at its export's input shape only: %s", name, why)
        if not shapes_free:
            self.max_batch = graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 1
        self.rectangular = rectangular and shapes_free
        self.image_size = image_size if shapes_free else info.image_size[0]
        graph = uint8_input(graph)  # fed decoded pixels; the session scales them
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads sleep instead of spinning: the loader thread decodes the next
        # photos on the same cores while the session runs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self._anchors: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        return input_shape(height, width, self.image_size, self.stride, self.rectangular)

    def prepare(self, group: list[Loaded], shape: tuple[int, int]) -> Batch:
        batch = Batch(shape=shape)
        images = []
        for item in group:
            try:
                image = decode_rgb(item.data)
            except Exception as error:
                batch.failed.append((item.key, describe(error)))
                continue
            images.append(letterbox(image, shape))
            batch.keys.append(item.key)
            batch.sizes.append(image.shape[:2])
        if images:  # (N, H, W, 3) uint8, as decoded
            batch.inputs = images[0][None] if len(images) == 1 else np.stack(images)
        return batch

    def feed(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The session's inputs for one batch (the anchors of its shape on the twin)."""
        feed = {self.input_name: inputs}
        if self.feeds_anchors:
            shape = inputs.shape[1:3]
            if shape not in self._anchors:
                self._anchors[shape] = anchors_for(*shape)
            feed[ANCHORS_INPUT], feed[STRIDES_INPUT] = self._anchors[shape]
        return feed

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The bare session on one prepared input (what the benchmark loops over)."""
        if self.max_batch and len(inputs) > self.max_batch:
            step = self.max_batch
            parts = [self.run(inputs[i : i + step]) for i in range(0, len(inputs), step)]
            return np.concatenate(parts)
        return self.session.run(None, self.feed(inputs))[0]

    def detect(self, batch: Batch, *, confidence: float, iou: float) -> list[list[Found]]:
        import torch

        torch.set_num_threads(1)  # NMS is small: no second spinning pool beside the session
        if batch.inputs is None:
            return []
        raw = torch.from_numpy(self.run(batch.inputs))
        return postprocess(raw, batch, self.names, confidence=confidence, iou=iou)
