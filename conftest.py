"""Fixtures every test tree of the workspace shares (orchestrator/tests, tests/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def yolo_bin() -> tuple[str, str]:
    """(bin folder of the yolo environment, model file): TGMED_YOLO_BIN and DETECT_MODEL,
    set by `make test`. Missing: skipped on a workstation, a failure in CI."""
    folder = os.environ.get("TGMED_YOLO_BIN", "")
    model = os.environ.get("DETECT_MODEL", "")
    if not (shutil.which("tgmed-yolo", path=folder or None) and Path(model).is_file()):
        message = (
            f"needs the yolo environment (make yolo-setup; TGMED_YOLO_BIN={folder!r}) "
            f"and the model file DETECT_MODEL={model!r}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder, model
