from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_MODEL = Path(__file__).resolve().parents[4] / "shared" / "models" / "yolov8n_int8.onnx"


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = Path(os.environ.get("DETECT_TEST_MODEL", SHARED_MODEL))
    if not path.is_file():
        pytest.fail(f"the shared YOLO model is missing: {path} (set DETECT_TEST_MODEL)")
    return path


@pytest.fixture(scope="session", autouse=True)
def offline(tmp_path_factory):
    from tgmed_yolo.model import offline_defaults

    offline_defaults(tmp_path_factory.mktemp("yolo-config"))


@pytest.fixture(scope="session")
def detector(model_path):
    """The stage's default runtime here: ONNX Runtime on the CPU."""
    from tgmed_yolo.model import load_detector

    return load_detector(str(model_path), "auto")


@pytest.fixture(scope="session")
def torch_detector(model_path):
    """The GPU code path (PyTorch, dequantized weights), run on the CPU."""
    from tgmed_yolo.model import load_detector

    return load_detector(str(model_path), "cpu", runtime="torch")


@pytest.fixture(scope="session")
def sample_lake_template(tmp_path_factory):
    """The bundled sample's photos in a lake (imported once, copied per test)."""
    from tgmed_common.lake import Lake
    from tgmed_sample.generate import generate
    from tgmed_scraper.export_import import import_exports

    root = tmp_path_factory.mktemp("sample")
    truth = generate(root / "sample", posts_per_channel=40, days=40)
    lake = Lake(root / "lake")
    assert not import_exports(lake, root / "sample" / "exports").failed
    return lake, truth


@pytest.fixture
def sample_lake(sample_lake_template, tmp_path):
    import shutil

    from tgmed_common.lake import Lake

    template, truth = sample_lake_template
    shutil.copytree(template.root, tmp_path / "lake")
    return Lake(tmp_path / "lake"), truth
