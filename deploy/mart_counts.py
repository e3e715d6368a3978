"""The row count of every table and view in the warehouse's `marts` schema, and the same
counts from a local-mode run of `telegram_pipeline` on the same sample: the reference
the compose e2e (deploy/e2e.py) and the Kubernetes e2e (k8s/e2e.py) compare with, so the
three ways of running the platform are shown to build the same marts.

    python deploy/mart_counts.py --local    # the local-mode reference, as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "yolov8n_int8.onnx"
LIST_MARTS_SQL = (
    "select string_agg(table_name, ',' order by table_name)"
    " from information_schema.tables where table_schema = 'marts'"
)
PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def mart_counts(query: Callable[[str], str]) -> dict[str, int]:
    """Row counts of the marts through `query` (SQL in, the text of the first row's
    single value out: psql -tAc, a psycopg connection...): the tables, then one count
    query over all of them (no server-side loop: the embedded server has no libxml)."""
    tables = [name for name in query(LIST_MARTS_SQL).strip().split(",") if name]
    odd = [name for name in tables if not PLAIN_NAME.fullmatch(name)]
    if odd:
        raise SystemExit(f"unexpected table names in marts: {odd}")
    if not tables:
        return {}
    # names from the catalogue, checked above to be plain identifiers
    body = " union all ".join(
        f"select '{name}' as t, count(*) as n from marts.{name}"  # noqa: S608
        for name in tables
    )
    return json.loads(query(f"select json_object_agg(t, n order by t)::text from ({body}) c"))  # noqa: S608


# bookkeeping, not data: one row per dbt invocation (dbt/macros/record_build.sql)
BOOKKEEPING = {"dbt_builds"}


def differences(expected: dict[str, int], got: dict[str, int]) -> list[str]:
    """Each mart whose count differs (or exists on one side only), as `name: a != b`;
    bookkeeping tables (a row per build) are not compared."""
    return [
        f"{name}: {expected.get(name, 'missing')} != {got.get(name, 'missing')}"
        for name in sorted((set(expected) | set(got)) - BOOKKEEPING)
        if expected.get(name) != got.get(name)
    ]


def sample_and_truth() -> tuple[Path, dict]:
    """The bundled sample both e2e runs import (written by tgmed-sample on first use) and
    what the generator says is in it; the shared detection model must be there too."""
    if not MODEL.is_file():
        raise SystemExit(f"the shared model is missing: {MODEL}")
    sample = ROOT / "data" / "sample"
    if not (sample / "truth.json").is_file():
        generator = Path(sys.executable).parent / "tgmed-sample"
        subprocess.run([str(generator), "--out", str(sample)], check=True)
    return sample, json.loads((sample / "truth.json").read_text())


def local_mode_counts(sample: Path, model: Path = MODEL) -> dict[str, int]:
    """telegram_pipeline in local mode (subprocess stages, the yolo stage from .venv-yolo)
    on `sample`'s exports, into a fresh lake, Dagster instance and embedded PostgreSQL
    in a temporary folder; the marts' row counts."""
    import psycopg

    bin_dir = Path(sys.executable).parent
    yolo_bin = ROOT / ".venv-yolo" / "bin"
    if not (yolo_bin / "tgmed-yolo").is_file():
        raise SystemExit(f"{yolo_bin}/tgmed-yolo missing: make yolo-setup")
    scratch = Path(tempfile.mkdtemp(prefix="tgmed-local-marts-"))
    pgdata = scratch / "pg"
    try:
        out = subprocess.run(
            [str(bin_dir / "tgmed-devdb"), "start", "--pgdata", str(pgdata)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        url = next(
            line.split("=", 1)[1] for line in out.splitlines() if line.startswith("DATABASE_URL=")
        )
        home = scratch / "dagster"
        home.mkdir()
        shutil.copy(ROOT / "orchestrator" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DAGSTER_HOME": str(home),
            "LAKE_DIR": str(scratch / "lake"),
            "TGMED_LAUNCH_MODE": "local",
            "TGMED_SCRAPE_SOURCE": "export",
            "TGMED_EXPORT_ROOT": str(sample / "exports"),
            "TGMED_YOLO_BIN": str(yolo_bin),
            "DETECT_MODEL": str(model),
            "YOLO_OFFLINE": "1",
            "YOLO_AUTOINSTALL": "false",
            "YOLO_CONFIG_DIR": str(scratch / "yolo"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        started = time.monotonic()
        done = subprocess.run(
            [str(bin_dir / "tgmed-orchestrator"), "launch", "telegram_pipeline"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode or "of telegram_pipeline: SUCCESS" not in done.stdout + done.stderr:
            tail = (done.stdout + done.stderr)[-3000:]
            raise SystemExit(f"local-mode telegram_pipeline failed ({done.returncode}):\n{tail}")
        print(
            f"local mode: telegram_pipeline SUCCESS in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
        with psycopg.connect(url) as conn:
            return mart_counts(lambda sql: str(conn.execute(sql).fetchone()[0] or ""))
    finally:
        subprocess.run(
            [str(bin_dir / "tgmed-devdb"), "stop", "--pgdata", str(pgdata)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--local", action="store_true", help="run local mode, print its counts")
    args = parser.parse_args()
    if args.local:
        print(json.dumps(local_mode_counts(args.sample.resolve()), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
