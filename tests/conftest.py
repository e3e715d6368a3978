"""The sample, through the real stages, into a real PostgreSQL: exports -> lake ->
loader -> dbt build. Shared by the cross-stage tests (warehouse, api)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tgmed_common.lake import Lake, read_messages
from tgmed_common.records import DetectionRecord
from tgmed_sample.generate import generate
from tgmed_sample.photos import CONTENTS
from tgmed_scraper.export_import import import_exports

COCO_IDS = {"person": 0, "motorcycle": 3, "cat": 15, "tie": 27, "bottle": 39, "cup": 41}


def stage(main, argv: list[str]) -> dict:
    """Run a stage CLI in-process; returns its JSON summary (the last stdout line)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    summary["exit_code"] = code
    return summary


def write_detections(lake: Lake, truth: dict, run_id: str = "det-test") -> int:
    """Detection records for every sample photo, naming what is really in it (the
    generator knows each photo's source picture). Stand-in input until the yolo stage
    writes its own; the warehouse reads them the same way."""
    written = 0
    for path in lake.message_files():
        by_day: dict = {}
        for record in read_messages(path):
            if not record.media_path:
                continue
            source = truth["channels"][record.channel_username]["photos_by_message"][
                str(record.message_id)
            ]
            detections = [
                {
                    "class_id": COCO_IDS[name],
                    "class_name": name,
                    "confidence": 0.8,
                    "box": (10.0, 10.0, 200.0, 200.0),
                }
                for name in CONTENTS[source]
            ]
            by_day.setdefault(record.date.date(), []).append(
                DetectionRecord(
                    channel_username=record.channel_username,
                    message_id=record.message_id,
                    media_path=record.media_path,
                    model_name="yolov8n_int8.onnx",
                    model_hash="test-model",
                    image_width=640,
                    image_height=480,
                    detections=detections,
                    detected_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
            )
        for day, records in by_day.items():
            target = lake.detection_file(day, records[0].channel_username, f"{run_id}-{path.stem}")
            written += lake.write_records(target, records)
    return written


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory) -> tuple[Lake, dict, Path]:
    root = tmp_path_factory.mktemp("warehouse")
    truth = generate(root / "sample")
    lake = Lake(root / "lake")
    summary = import_exports(lake, root / "sample" / "exports")
    assert not summary.failed
    write_detections(lake, truth)
    return lake, truth, root


def build_warehouse(lake: Lake, url: str, target: Path) -> dict:
    """init-db, load, dbt build into the database at `url`; the stages' summaries."""
    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("LAKE_DIR", str(lake.root))
        patch.setenv("DBT_TARGET_PATH", str(target))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        return {
            "init": stage(loader, ["init-db"]),
            "messages": stage(loader, ["load", "messages"]),
            "detections": stage(loader, ["load", "detections"]),
            "build": stage(transform, ["build"]),
        }


@pytest.fixture(scope="session")
def make_warehouse(sample_lake, fresh_database, tmp_path_factory):
    """A factory: a new database holding the loaded sample and the built marts."""
    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    lake, truth, _ = sample_lake

    def make(prefix: str) -> dict:
        url = fresh_database(prefix)
        target = tmp_path_factory.mktemp(f"dbt-target-{prefix}")
        return {
            "url": url,
            "truth": truth,
            "lake": lake,
            "summaries": build_warehouse(lake, url, target),
            "target": target,
            "loader": loader,
            "transform": transform,
            "stage": stage,
        }

    return make


@pytest.fixture(scope="module")
def warehouse(make_warehouse):
    """A database holding the loaded sample and the built marts (one per test module:
    warehouse tests change it)."""
    return make_warehouse("warehouse")


@pytest.fixture(scope="module")
def detected_warehouse(fresh_database, tmp_path_factory):
    """The sample through the real detection stage (its own environment, .venv-yolo, run
    as a process the way the orchestrator's local mode runs it) and on into the marts."""
    import os
    import shutil
    import subprocess

    from tgmed_loader.cli import main as loader
    from tgmed_transform.cli import main as transform

    yolo_bin = os.environ.get("TGMED_YOLO_BIN", "")
    model = os.environ.get("DETECT_MODEL", "")
    if not (shutil.which("tgmed-yolo", path=yolo_bin or None) and Path(model).is_file()):
        message = (
            f"needs the yolo environment (make yolo-setup; TGMED_YOLO_BIN={yolo_bin!r}) "
            f"and the model file DETECT_MODEL={model!r}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("detected")
    truth = generate(root / "sample")
    lake = Lake(root / "lake")
    assert not import_exports(lake, root / "sample" / "exports").failed
    env = {**os.environ, "LAKE_DIR": str(lake.root), "DETECT_MODEL": model}
    done = subprocess.run(
        [shutil.which("tgmed-yolo", path=yolo_bin or None), "detect"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    detect_summary = json.loads(done.stdout.strip().splitlines()[-1])
    url = fresh_database("detected")
    target = tmp_path_factory.mktemp("dbt-target-detected")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("LAKE_DIR", str(lake.root))
        patch.setenv("DBT_TARGET_PATH", str(target))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        summaries = {
            "detect": detect_summary,
            "init": stage(loader, ["init-db"]),
            "load": stage(loader, ["load", "all"]),
            "build": stage(transform, ["build"]),
        }
    return {"url": url, "truth": truth, "lake": lake, "summaries": summaries}
