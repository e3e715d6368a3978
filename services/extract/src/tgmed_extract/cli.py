"""`tgmed-extract run`: products, prices, services and candidate products of every lake
message not yet extracted by this extractor and knowledge base (LAKE_DIR).

Logs on stderr; the last stdout line is a JSON summary. Exit code 0 when every message
file was extracted, 1 when one could not be read (named in the log; the rest went
through) or the stage itself failed, 2 for a usage or configuration error. Launched by
Dagster, the same summary and outcome go back through Dagster Pipes (tgmed_common.stage).

`tgmed-extract text "Augmentin 625mg 450 birr"` prints what one text holds (JSON), and
`tgmed-extract version` the version tag output is stamped with.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from tgmed_common.lake import Lake
from tgmed_common.logs import configure_logging
from tgmed_common.settings import LakeSettings, load_settings
from tgmed_common.stage import SetAside, StageReport, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tgmed-extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="extract every lake message file not yet extracted under this version",
        description="Processes come from EXTRACT_WORKERS (0: one per core).",
    )
    run.add_argument("--workers", type=int, help="processes (default EXTRACT_WORKERS)")
    text = commands.add_parser("text", help="print what one text holds, as JSON")
    text.add_argument("text", help="the post's text ('-' reads standard input)")
    commands.add_parser("version", help="print the version tag extraction files carry")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)

    if args.command == "text":
        from tgmed_extract import extract

        body = sys.stdin.read() if args.text == "-" else args.text
        print(json.dumps(asdict(extract(body)), ensure_ascii=False, indent=2))
        return 0
    if args.command == "version":
        from tgmed_extract.stage import version_tag

        print(version_tag())
        return 0

    def body() -> dict:
        from tgmed_extract.settings import ExtractSettings
        from tgmed_extract.stage import run_extraction

        overrides = {"workers": args.workers} if args.workers is not None else {}
        settings = load_settings(ExtractSettings, **overrides)
        lake = Lake(load_settings(LakeSettings).lake_dir)
        return run_extraction(lake, settings.workers).as_dict()

    return run_stage("extract", body, describe=stage_report)


def stage_report(summary: dict) -> StageReport:
    """An extraction's report: the message files it could not read, each with why."""
    return StageReport.of(
        summary,
        set_aside=[
            SetAside.from_reason(p, why) for p, why in (summary.get("failed") or {}).items()
        ],
        set_aside_total=int(summary.get("skipped") or 0),
    )


if __name__ == "__main__":
    sys.exit(main())
