"""What the stage reads out of an ultralytics ONNX export (the shared model is one):
its class names and input size, a twin of the graph that takes any input shape, and
its weights dequantized for PyTorch.

An export's graph is frozen at the export's input shape: the detection head reshapes
with the batch size written in, and its anchor points and strides are constants for
640x640. The twin keeps every other node and every weight byte for byte; it only lets
those reshapes follow the input and takes the anchors and strides as two more inputs
(computed per input shape, `anchors_for`). The same weights then run on a batch of
any size and on rectangular inputs (a 4:3 photo as 640x480, not padded to 640x640).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

ANCHORS_INPUT = "anchors"
STRIDES_INPUT = "strides"
HEAD_STRIDES = (8, 16, 32)


class UnsupportedGraph(ValueError):
    """The ONNX file is not an export this module knows how to adapt."""


@dataclass(frozen=True)
class ExportInfo:
    names: dict[int, str]
    image_size: tuple[int, int]  # height, width the export was made for
    stride: int
    architecture: str | None  # ultralytics model config, e.g. "yolov8n" (from the description)


def export_info(model: Any) -> ExportInfo:
    """Class names and input size from the metadata ultralytics writes into an export."""
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if "names" not in meta:
        raise UnsupportedGraph(
            "the ONNX file has no class names in its metadata: export it with ultralytics "
            "(`yolo export format=onnx`), which writes them"
        )
    names = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
    size = ast.literal_eval(meta.get("imgsz", "[640, 640]"))
    found = re.search(r"Ultralytics (\S+) model", meta.get("description", ""))
    return ExportInfo(
        names=names,
        image_size=(int(size[0]), int(size[1])),
        stride=int(meta.get("stride", 32)),
        architecture=found.group(1).lower() if found else None,
    )


def anchors_for(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The head's anchor points (1, 2, N) and strides (1, N) for one input shape, in the
    order ultralytics' `make_anchors` lays them out (stride 8 first, row-major)."""
    points, strides = [], []
    for stride in HEAD_STRIDES:
        rows, cols = height // stride, width // stride
        y, x = np.meshgrid(np.arange(rows) + 0.5, np.arange(cols) + 0.5, indexing="ij")
        points.append(np.stack([x.ravel(), y.ravel()]))
        strides.append(np.full(rows * cols, stride))
    return (
        np.concatenate(points, 1)[None].astype(np.float32),
        np.concatenate(strides)[None].astype(np.float32),
    )


def is_static(model: Any) -> bool:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return all(dim.HasField("dim_value") for dim in dims)


def dynamic_twin(model: Any) -> Any:
    """A copy of an ultralytics detection export that accepts (batch, 3, H, W) for any
    batch and any H, W divisible by 32, fed with `anchors_for(H, W)`. Raises
    UnsupportedGraph when the graph is not the head layout this knows."""
    import onnx
    from onnx import helper, numpy_helper

    if not is_static(model):
        raise UnsupportedGraph("the graph's input is already dynamic")
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    graph = twin.graph
    height, width = (d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[2:])
    batch = graph.input[0].type.tensor_type.shape.dim[0].dim_value
    anchors, strides = anchors_for(height, width)
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    replaced = {ANCHORS_INPUT: [], STRIDES_INPUT: []}
    reshapes = 0
    for name, init in list(initializers.items()):
        users = consumers.get(name, [])
        if not users:
            continue
        value = numpy_helper.to_array(init)
        if value.shape == anchors.shape and np.array_equal(value, anchors):
            replaced[ANCHORS_INPUT].append(name)
        elif value.shape == strides.shape and np.array_equal(value, strides):
            replaced[STRIDES_INPUT].append(name)
        elif (
            all(node.op_type == "Reshape" and node.input[1] == name for node in users)
            and value.dtype == np.int64
            and value.ndim == 1
            and len(value) >= 3
            and value[0] == batch
            and not any(node.input[0] in initializers for node in users)
        ):
            # the head's reshapes: (1, C, -1), (1, 4, 16, 8400), (1, 4, 8400): the batch
            # follows the input (0 = copy that dimension), the anchors' count too (-1)
            shape = value.copy()
            shape[0] = 0
            if shape[-1] == anchors.shape[-1]:
                shape[-1] = -1
            init.CopyFrom(numpy_helper.from_array(shape, name))
            reshapes += 1
    if not replaced[ANCHORS_INPUT] or not replaced[STRIDES_INPUT] or not reshapes:
        raise UnsupportedGraph(
            "the graph's head does not have the layout of an ultralytics detection export "
            "(anchor and stride constants, batch reshapes)"
        )
    for new_name, old_names in replaced.items():
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name in old_names:
                    node.input[index] = new_name
        for old in old_names:
            graph.initializer.remove(initializers[old])
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[2].dim_param, dims[3].dim_param = "batch", "height", "width"
    graph.input.append(
        helper.make_tensor_value_info(ANCHORS_INPUT, onnx.TensorProto.FLOAT, [1, 2, "anchors"])
    )
    graph.input.append(
        helper.make_tensor_value_info(STRIDES_INPUT, onnx.TensorProto.FLOAT, [1, "anchors"])
    )
    out = graph.output[0].type.tensor_type.shape.dim
    out[0].dim_param, out[2].dim_param = "batch", "anchors"
    del graph.value_info[:]  # shapes inferred for 640x640; ONNX Runtime infers them anew
    onnx.checker.check_model(twin)
    return twin


def dequantized_weights(model: Any) -> dict[str, np.ndarray]:
    """Every weight of the export as float32, under its PyTorch name: an int8/uint8
    quantized weight `w_quantized` with its `w_scale` and `w_zero_point` becomes
    (q - zero_point) * scale once, so the network runs in fp32 or fp16 anywhere."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    weights: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if name.startswith(("/", "onnx::")):
            continue  # graph constants (shapes, splits), not parameters
        if name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            scale = values[f"{base}_scale"].astype(np.float32)
            zero = values[f"{base}_zero_point"].astype(np.float32)
            if scale.ndim == 1:  # per-channel: along the output channels
                shape = (-1,) + (1,) * (value.ndim - 1)
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            weights[base] = (value.astype(np.float32) - zero) * scale
        elif not name.endswith(("_scale", "_zero_point")):
            weights[name] = value.astype(np.float32)
    return weights


def uint8_input(model: Any) -> Any:
    """A copy that takes the letterboxed photos as they are decoded, (N, H, W, 3) uint8
    RGB, and turns them into the network's (N, 3, H, W) floats in 0..1 itself (as
    ultralytics does: x / 255): converting in ONNX Runtime costs a fraction of doing it
    in numpy beside it, and the pixels the network sees are the same."""
    import onnx
    from onnx import helper, numpy_helper

    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    source = graph.input[0]
    name = source.name
    scaled = f"{name}_scaled"
    for node in graph.node:
        for index, used in enumerate(node.input):
            if used == name:
                node.input[index] = scaled
    dims = source.type.tensor_type.shape.dim
    batch, _, height, width = (
        d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims
    )
    graph.input.remove(source)
    graph.input.insert(
        0, helper.make_tensor_value_info(name, onnx.TensorProto.UINT8, [batch, height, width, 3])
    )
    graph.initializer.append(numpy_helper.from_array(np.array(255, np.float32), f"{name}_255"))
    front = [
        helper.make_node("Transpose", [name], [f"{name}_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", [f"{name}_nchw"], [f"{name}_float"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Div", [f"{name}_float", f"{name}_255"], [scaled]),
    ]
    for node in reversed(front):
        graph.node.insert(0, node)
    onnx.checker.check_model(converted)
    return converted
