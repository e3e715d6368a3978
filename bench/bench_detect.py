"""Detection throughput: the stage against the seed approach, same images, same model.

Seed approach (the baseline, measured in the same run): a Python loop calling
`model(path)` once per image. The stage: `run_detection` (threaded decoding overlapped
with batched inference, records written to the lake). Goal: >= 2x on a 2-core CPU.

    .venv-yolo/bin/python bench/bench_detect.py [--images 224] [--model PATH]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from tgmed_common.lake import Lake
from tgmed_yolo.model import Detector, offline_defaults
from tgmed_yolo.photos import Shard

SHARED_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "yolov8n_int8.onnx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=SHARED_MODEL)
    parser.add_argument("--posts", type=int, default=130, help="sample posts per channel")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--lake", type=Path, help="an existing lake's photos instead of a generated sample"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    offline_defaults(work / "yolo-config")
    from tgmed_yolo.detect import run_detection
    from tgmed_yolo.settings import DetectSettings

    try:
        lake = Lake(work / "lake")
        if args.lake:  # e.g. on a GPU machine without the sample generator's packages
            shutil.copytree(
                args.lake / "raw" / "telegram_media", lake.root / "raw" / "telegram_media"
            )
        else:
            from tgmed_sample.generate import generate
            from tgmed_scraper.export_import import import_exports

            generate(work / "sample", posts_per_channel=args.posts)
            import_exports(lake, work / "sample" / "exports")
        photos = lake.media_files()
        from ultralytics import YOLO

        seed_model = YOLO(str(args.model), task="detect")  # the seed: ultralytics as is
        detector = Detector.load(str(args.model), "auto")
        print(f"{len(photos)} photos, model {detector.name} on {detector.device}")
        # warm both paths once (model load and first-call setup are not what we compare)
        seed_model(str(photos[0]), verbose=False)
        from tgmed_yolo.detect import decode

        detector.predict([decode(photos[0])[0]], confidence=0.25, iou=0.45, image_size=640)

        started = time.perf_counter()
        seed_objects = 0
        for path in photos:
            result = seed_model(str(path), verbose=False)
            seed_objects += len(result[0].boxes)
        seed = time.perf_counter() - started

        settings = DetectSettings(
            model=str(args.model), batch_size=args.batch, decode_threads=args.threads
        )
        started = time.perf_counter()
        summary = run_detection(lake, settings, Shard(0, 1), detector)
        stage = time.perf_counter() - started
        assert summary.images == len(photos) and summary.failed == 0
        print(
            f"seed loop, model(path) per image: {len(photos) / seed:.2f} images/s "
            f"({seed:.1f}s, {seed_objects} objects)"
        )
        print(
            f"tgmed-yolo detect (batch {args.batch}, {args.threads} decode threads): "
            f"{len(photos) / stage:.2f} images/s ({stage:.1f}s, {summary.objects} objects)"
        )
        print(f"ratio stage/seed: {seed / stage:.2f} (goal >= 2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
