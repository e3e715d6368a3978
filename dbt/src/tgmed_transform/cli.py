"""`tgmed-transform`: the dbt stage. Runs the project in `dbt/` against DATABASE_URL.

    tgmed-transform build [--full-refresh] [--select ...]   seeds, models, tests, then docs
    tgmed-transform docs                                    dbt docs, published
    tgmed-transform manifest [--out FILE]                   dbt's manifest for Dagster
    tgmed-transform dbt -- ARGS...                          any other dbt command

The docs site (models, columns, tests, lineage: `dbt docs generate --static`, one
self-contained HTML file) is published into the warehouse (`marts.dbt_docs`), where the
API serves it at /dbt-docs/ through its read-only role: no shared volume between the
transform stage and the API in any launch mode. `build` publishes it after a successful
build (TRANSFORM_PUBLISH_DOCS=false or --no-docs skips it).

dbt's own output goes to stderr; the last stdout line is a JSON summary (models built,
tests passed/failed, per status, the failing tests by name). Exit code 0 when every node
succeeded, 1 otherwise, 2 for a configuration error. Launched by Dagster (Pipes), dbt's
result events (report.py) go to the orchestrator, which makes them materializations and
check results with dagster-dbt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tgmed_common.logs import configure_logging
from tgmed_common.progress import Progress
from tgmed_common.settings import load_settings, secret_values
from tgmed_common.stage import StageReport, run_stage
from tgmed_transform.report import report_events, result_event
from tgmed_transform.settings import TransformSettings


def dbt_environment(database_url: str) -> dict[str, str]:
    """DBT_PG_* variables for profiles.yml, from one DATABASE_URL (a host may be a unix
    socket folder, given as ?host=/path)."""
    parts = urlsplit(database_url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return {
        "DBT_PG_HOST": host,
        "DBT_PG_PORT": str(parts.port or query.get("port", ["5432"])[0]),
        "DBT_PG_USER": unquote(parts.username or "postgres"),
        "DBT_PG_PASSWORD": unquote(parts.password or ""),
        "DBT_PG_DBNAME": parts.path.lstrip("/") or "postgres",
    }


def summarize(command: str, result: Any, seconds: float) -> dict[str, Any]:
    statuses: Counter = Counter()
    failures = []
    for item in getattr(result.result, "results", None) or []:
        kind = str(getattr(item.node.resource_type, "value", item.node.resource_type))
        status = str(getattr(item.status, "value", item.status))
        statuses[f"{kind}_{status}"] += 1
        if status in {"error", "fail"}:
            failures.append(f"{item.node.unique_id}: {item.message}")
    return {
        "stage": "transform",
        "command": command,
        "success": bool(result.success),
        "counts": dict(sorted(statuses.items())),
        "failures": failures[:20],
        "seconds": round(seconds, 2),
    }


def dbt_progress(label: str, events: list[dict[str, Any]]) -> tuple[Progress, Any]:
    """A Progress over dbt's nodes (seeds, models, tests) and the dbtRunner callback that
    feeds it: the stage logs counts and an ETA instead of dbt's START/PASS line per node.
    The callback keeps each result event (report.py) in `events`."""
    progress = Progress(label, unit="nodes")

    def on_event(event: Any) -> None:
        name = event.info.name
        raw = result_event(event)
        if raw is not None:
            events.append(raw)
        if name == "LogStartLine" and progress.total is None:
            # the rate counts from the first node: parsing the project is not node work
            progress.total = int(event.data.total)
            progress.restart()
        elif name == "NodeFinished":
            progress.advance()

    return progress, on_event


def run_dbt(
    args: list[str], settings: TransformSettings, events: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    os.environ.update(dbt_environment(settings.database_url.get_secret_value()))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DBT_VERSION_CHECK", "false")
    # the stage's stderr is what Dagster's log shows: dbt's warnings and errors there,
    # without colour codes; every line (debug included) stays in dbt.log (DBT_LOG_PATH)
    os.environ.setdefault("DBT_USE_COLORS", "false")
    os.environ.setdefault("DBT_LOG_LEVEL", "warn")
    progress, on_event = dbt_progress(f"dbt {args[0]}", [] if events is None else events)
    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the summary
        result = dbtRunner(callbacks=[on_event]).invoke(
            [*args, "--project-dir", project, "--profiles-dir", project]
        )
    if result.exception is not None:
        raise RuntimeError(f"dbt {args[0]} could not run: {result.exception}")
    progress.done()
    return summarize(args[0], result, time.monotonic() - started)


DOCS_TABLE_SQL = """
create table if not exists marts.dbt_docs (
    site text primary key,
    html text not null,
    generated_at timestamptz not null
)
"""
PUBLISH_SQL = """
insert into marts.dbt_docs (site, html, generated_at) values ('index', %s, now())
on conflict (site) do update set html = excluded.html, generated_at = excluded.generated_at
"""


def target_dir(settings: TransformSettings) -> Path:
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else settings.dbt_project_dir / "target"


def publish_docs(settings: TransformSettings) -> dict[str, Any]:
    """dbt docs generate --static, and the page into marts.dbt_docs (one transaction)."""
    import psycopg2

    summary = run_dbt(["docs", "generate", "--static"], settings)
    if not summary["success"]:
        return summary
    page = target_dir(settings) / "static_index.html"
    html = page.read_text(encoding="utf-8")
    connect = psycopg2.connect(settings.database_url.get_secret_value())
    with contextlib.closing(connect) as conn, conn, conn.cursor() as cursor:
        cursor.execute(DOCS_TABLE_SQL)
        cursor.execute(PUBLISH_SQL, (html,))
    summary["docs_published_bytes"] = len(html.encode())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tgmed-transform", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="dbt build: seeds, models and their tests")
    build.add_argument("--full-refresh", action="store_true")
    build.add_argument("--select", nargs="+")
    build.add_argument(
        "--indirect-selection",
        choices=["eager", "cautious", "buildable", "empty"],
        help="which tests follow the models selected (dbt's; Dagster passes empty when a"
        " model is selected without some of its checks)",
    )
    build.add_argument("--no-docs", action="store_true", help="do not publish the docs site")
    commands.add_parser(
        "docs", help="dbt docs generate --static, published into marts.dbt_docs (/dbt-docs/)"
    )
    manifest = commands.add_parser(
        "manifest", help="write dbt's manifest, trimmed and stable, for the orchestrator"
    )
    manifest.add_argument("--out", type=Path, help="file to write (default: stdout)")
    passthrough = commands.add_parser("dbt", help="any dbt command: tgmed-transform dbt -- ARGS")
    passthrough.add_argument("dbt_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "manifest":
        from tgmed_transform.manifest import write_manifest

        return write_manifest(args.out)
    events: list[dict[str, Any]] = []  # dbt's result events, for Dagster (report.py)

    def run() -> dict[str, Any]:
        settings = load_settings(TransformSettings)
        configure_logging(args.log_level, secret_values(settings))
        if args.command == "build":
            dbt_args = ["build"] + (["--full-refresh"] if args.full_refresh else [])
            dbt_args += ["--select", *args.select] if args.select else []
            if args.indirect_selection:
                dbt_args += ["--indirect-selection", args.indirect_selection]
            summary = run_dbt(dbt_args, settings, events)
            if summary["success"] and settings.transform_publish_docs and not args.no_docs:
                docs = publish_docs(settings)
                summary["docs_published_bytes"] = docs.get("docs_published_bytes", 0)
                summary["seconds"] = round(summary["seconds"] + docs["seconds"], 2)
                if not docs["success"]:
                    summary["success"] = False
                    summary["failures"] = ["dbt docs generate failed", *docs["failures"]]
            return summary
        if args.command == "docs":
            return publish_docs(settings)
        return run_dbt([a for a in args.dbt_args if a != "--"], settings, events)

    return run_stage(
        "transform",
        run,
        failed=lambda summary: not summary["success"],
        report=lambda pipes, summary: report_events(pipes, events),
        describe=stage_report,
    )


def stage_report(summary: dict) -> StageReport:
    """A dbt run's report: its counts by status (`model_success`, `test_fail`, ...) and
    the failing tests and models by name."""
    counts = summary.get("counts") or {}
    return StageReport.of(
        {**summary, **counts}, failures=summary.get("failures") or (), leave_out=("counts",)
    )


if __name__ == "__main__":
    sys.exit(main())
