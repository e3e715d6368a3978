"""Detection parity of the stage's runtimes with the original CPU path (ultralytics'
predictor on the model file), on the same distinct photos: the same classes, boxes at
IoU >= 0.9 for >= 95% of the detections above the confidence threshold
(`tgmed_yolo.parity` defines the measures)."""

import numpy as np
import pytest

from tgmed_yolo.model import load_detector
from tgmed_yolo.parity import compare, parity_photos, reference_detections, runtime_detections


@pytest.fixture(scope="module")
def photos():
    return parity_photos()


@pytest.fixture(scope="module")
def reference(model_path, photos):
    found = reference_detections(model_path, photos)
    assert sum(len(f) for f in found) > 100  # enough detections for a share to mean much
    return found


def test_cpu_runtime_gives_exactly_the_reference_detections(detector, photos, reference):
    assert (detector.runtime, detector.precision, detector.max_batch) == ("onnxruntime", "int8", 1)
    parity = compare(reference, runtime_detections(detector, photos))
    assert parity.strict == parity.tolerant == 1.0, parity.unmatched


def test_gpu_code_path_run_on_the_cpu_matches_the_reference(torch_detector, photos, reference):
    """PyTorch with the int8 weights dequantized, batched, decoding with torchvision and
    letterboxing in torch: what runs on CUDA, here in fp32 on the CPU."""
    assert (torch_detector.runtime, torch_detector.precision) == ("torch", "fp32")
    parity = compare(reference, runtime_detections(torch_detector, photos, batch_size=8))
    print(f"torch fp32 on the CPU vs reference: {parity}")
    assert parity.tolerant >= 0.95, (str(parity), parity.unmatched)
    assert parity.strict >= 0.90, (str(parity), parity.unmatched)


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device on this machine"
)
def test_gpu_parity_in_half_precision(model_path, photos, reference):
    detector = load_detector(str(model_path), "auto")
    assert (detector.runtime, detector.precision) == ("torch", "fp16")
    parity = compare(reference, runtime_detections(detector, photos, batch_size=32))
    print(f"torch fp16 on {detector.device} vs reference: {parity}")
    assert parity.tolerant >= 0.95, (str(parity), parity.unmatched)


def test_a_photos_detections_do_not_depend_on_the_batch_beside_it(torch_detector, photos):
    alone = runtime_detections(torch_detector, photos[:6], batch_size=1)
    together = runtime_detections(torch_detector, photos[:6], batch_size=6)
    for one, many in zip(alone, together, strict=True):
        assert [d[0] for d in one] == [d[0] for d in many]
        for a, b in zip(one, many, strict=True):
            assert abs(a[2] - b[2]) < 1e-3 and np.allclose(a[3], b[3], atol=0.5)


def test_twin_graph_is_the_export_at_its_shape_and_runs_rectangular_batches(model_path):
    import onnx
    import onnxruntime

    from tgmed_yolo.onnx_graph import anchors_for, dynamic_twin

    graph = onnx.load(str(model_path))
    original = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    twin = onnxruntime.InferenceSession(
        dynamic_twin(graph).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    images = np.random.default_rng(1).random((1, 3, 640, 640), dtype=np.float32)
    anchors, strides = anchors_for(640, 640)
    expected = original.run(None, {"images": images})[0]
    got = twin.run(None, {"images": images, "anchors": anchors, "strides": strides})[0]
    assert np.array_equal(expected, got)  # the same weights, the same ops: the same output
    anchors, strides = anchors_for(480, 640)
    wide = twin.run(
        None, {"images": images[:, :, :480].repeat(2, 0), "anchors": anchors, "strides": strides}
    )[0]
    assert wide.shape == (2, 84, 6300)  # 25% fewer anchors (and pixels) than 640x640


def test_rectangular_inputs_find_the_same_objects_with_fewer_pixels(model_path, photos, reference):
    detector = load_detector(str(model_path), "cpu", rectangular=True)
    assert detector.rectangular and detector.input_shape(480, 640) == (480, 640)
    assert detector.input_shape(1080, 810) == (640, 480)
    parity = compare(reference, runtime_detections(detector, photos))
    print(f"onnxruntime, rectangular inputs, vs reference: {parity}")
    assert parity.tolerant >= 0.9, (str(parity), parity.unmatched)
