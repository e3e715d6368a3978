"""`tgmed-yolo detect`: object detection over lake photos (LAKE_DIR).

Finds photos with no detection record for the current model (by weights hash), runs
YOLO on them in batches, writes one record per image. Logs on stderr; the last stdout
line is a JSON summary. Exit code 0 when every image got a record (unreadable files
are recorded as failed and reported, not fatal), 1 when the stage itself failed, 2 for
a usage or configuration error. Launched by Dagster, the same summary and outcome go
back through Dagster Pipes (tgmed_common.stage).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tgmed_common.lake import Lake
from tgmed_common.logs import configure_logging
from tgmed_common.settings import LakeSettings, load_settings
from tgmed_common.stage import run_stage
from tgmed_yolo.model import offline_defaults
from tgmed_yolo.photos import Shard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tgmed-yolo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser(
        "detect",
        help="detect objects in lake photos not yet processed by this model",
        description="Model, thresholds and batch size come from DETECT_* variables.",
    )
    detect.add_argument(
        "--shard",
        default="0/1",
        type=_shard,
        help="i/n: process only this shard of the photos (default 0/1)",
    )
    detect.add_argument("--model", help="weights file (default DETECT_MODEL)")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)

    def run() -> dict:
        lake = Lake(load_settings(LakeSettings).lake_dir)
        offline_defaults(Path(lake.root).resolve().parent / "yolo-config")
        from tgmed_yolo.detect import run_detection  # imports ultralytics: after the defaults
        from tgmed_yolo.settings import DetectSettings

        overrides = {"model": args.model} if args.model else {}
        settings = load_settings(DetectSettings, **overrides)
        return run_detection(lake, settings, args.shard).as_dict()

    # a missing model file is a usage error; bad data is not (pydantic's ValidationError
    # is a ValueError: it must not pass for a configuration error)
    return run_stage("detect", run, usage_errors=(FileNotFoundError,))


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
