"""`tgmed-loader`: lake files into PostgreSQL.

    tgmed-loader init-db                      raw schema, marts/staging schemas, API role
    tgmed-loader load messages|observations|snapshots|detections|telegram|all
    tgmed-loader keys create NAME --scope reports|posts|all | list | revoke NAME|ID

`telegram` is what the scraper writes (messages, their observations, channel
snapshots); `all` is that and the detections. `keys create` prints the new API key
alone on the first stdout line (the only time it is shown: it is stored hashed).

Logs on stderr, one JSON summary line on stdout. Exit code 0 when every file loaded or
was already loaded, 1 when a file was quarantined (the rest still loaded) or the
database failed, 2 for a usage or configuration error. Launched by Dagster (Pipes), a
load also reports the table it loaded as a materialization (rows, files, seconds, the
table's row count) and the check `no_quarantined_files` on it, naming each file set
aside and why (with the line).
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from tgmed_common.api_keys import SCOPES
from tgmed_common.lake import Lake
from tgmed_common.logs import configure_logging
from tgmed_common.settings import ConfigError, LakeSettings, load_settings, secret_values
from tgmed_common.stage import SetAside, StageReport, run_stage
from tgmed_loader.api_keys import create_key, list_keys, revoke_key
from tgmed_loader.load import load_stream
from tgmed_loader.report import report_loads
from tgmed_loader.schema import ensure_api_role, ensure_raw_schema
from tgmed_loader.settings import ApiRoleSettings, DatabaseSettings, LoaderSettings
from tgmed_loader.streams import STREAMS, TELEGRAM_STREAMS


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tgmed-loader", description=__doc__.split("\n\n")[0])
    root.add_argument("--log-level", default="INFO")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init-db",
        help="create the raw tables, the staging/marts schemas and the read-only API role",
        description="Idempotent. The API role (API_DB_USER, default tgmed_api) can "
        "select from marts and nothing else; API_DB_PASSWORD sets its password.",
    )
    load = commands.add_parser(
        "load",
        help="load lake files (LAKE_DIR) into raw tables (DATABASE_URL)",
        description="Loads every lake file of the stream not loaded yet; one transaction "
        "per file; malformed files go to quarantine/ with the reason.",
    )
    load.add_argument("stream", choices=[*STREAMS, "telegram", "all"])
    load.add_argument("--workers", type=int, help="parallel files (default LOADER_WORKERS=2)")
    keys = commands.add_parser(
        "keys",
        help="API keys: create (shown once, stored hashed), list, revoke",
        description="Scopes: "
        + "; ".join(f"{name}: {text}" for name, text in SCOPES.items())
        + ". Run `tgmed-loader init-db` first (it makes the table).",
    )
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key, printed once on stdout")
    create.add_argument("name", help="who or what uses it (unique among active keys)")
    create.add_argument("--scope", choices=list(SCOPES), required=True)
    create.add_argument(
        "--rate-limit",
        type=int,
        help="requests per API_RATE_WINDOW_SECONDS for this key (default API_RATE_LIMIT)",
    )
    listing = actions.add_parser("list", help="the keys (never their secrets)")
    listing.add_argument("--revoked", action="store_true", help="revoked keys too")
    revoke = actions.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("name_or_id")
    return root


def _keys(args: argparse.Namespace, url: str) -> dict:
    with psycopg.connect(url) as conn:
        if args.action == "create":
            info, key = create_key(conn, args.name, args.scope, args.rate_limit)
            print(key, flush=True)  # stdout, once; never logged
            return {"stage": "keys", "created": info.as_dict()}
        if args.action == "list":
            return {
                "stage": "keys",
                "keys": [k.as_dict() for k in list_keys(conn, revoked=args.revoked)],
            }
        revoked = revoke_key(conn, args.name_or_id)
        if not revoked:
            raise ConfigError(f"no active key named or with id {args.name_or_id!r} (keys list)")
        return {"stage": "keys", "revoked": [k.as_dict() for k in revoked]}


def _run(args: argparse.Namespace) -> dict:
    database = load_settings(DatabaseSettings)
    configure_logging(args.log_level, secret_values(database))
    url = database.database_url.get_secret_value()
    if args.command == "keys":
        return _keys(args, url)
    if args.command == "init-db":
        api = load_settings(ApiRoleSettings)
        configure_logging(args.log_level, secret_values(api))
        with psycopg.connect(url) as conn:
            ensure_raw_schema(conn)
            password = api.password.get_secret_value() if api.password else None
            ensure_api_role(conn, api.user, password)
        return {"stage": "init-db", "api_role": api.user}
    lake = Lake(load_settings(LakeSettings).lake_dir)
    workers = args.workers or load_settings(LoaderSettings).workers
    streams = {"all": list(STREAMS), "telegram": list(TELEGRAM_STREAMS)}.get(
        args.stream, [args.stream]
    )
    summaries = [load_stream(url, lake, s, workers=workers).as_dict() for s in streams]
    if len(summaries) == 1:
        return summaries[0]
    totals = ("files", "loaded", "skipped", "quarantined", "rows", "upserted_files")
    return {
        "stage": "load",
        "streams": summaries,
        **{name: sum(s[name] for s in summaries) for name in totals},
    }


def stage_report(summary: dict) -> StageReport:
    """A load's report: the files it quarantined, each with its reason (and line)."""
    streams = summary.get("streams") or [summary]
    return StageReport.of(
        summary,
        set_aside=[
            SetAside.from_reason(path, why)
            for stream in streams
            for path, why in (stream.get("quarantine_reasons") or {}).items()
        ],
        set_aside_total=int(summary.get("quarantined") or 0),
        leave_out=("streams",),
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    return run_stage(
        args.command,
        lambda: _run(args),
        transient_errors=(psycopg.OperationalError,),
        report=report_loads,
        describe=stage_report,
    )


if __name__ == "__main__":
    sys.exit(main())
