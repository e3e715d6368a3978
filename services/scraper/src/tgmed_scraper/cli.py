"""`tgmed-scraper`: log in once, scrape channels, or import Telegram Desktop exports.

Logs go to stderr; the last line on stdout is a one-line JSON summary. Exit code 0 when
everything went through, 1 when a channel or an export failed (the rest still went
through), 2 for a usage or configuration error. Launched by Dagster (Pipes), the outcome
says which: a channel that failed on the network is `transient` (the scrape is retried;
high-water marks make the channels already done no-ops), one that failed otherwise (no
such channel, a FloodWait past the limit) or an export set aside is `set_aside`.

One `scrape` is one process with one Telegram connection for all its channels: a
session must never be used from two places at once (Telegram revokes the key).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from tgmed_common.channels import parse_channels, read_channels_file
from tgmed_common.lake import Lake
from tgmed_common.logs import configure_logging, register_secrets
from tgmed_common.settings import ConfigError, LakeSettings, load_settings, secret_values
from tgmed_common.stage import run_stage
from tgmed_scraper.export_import import import_exports
from tgmed_scraper.scrape import ScrapeOptions, scrape_channels
from tgmed_scraper.settings import ScraperSettings, TelegramAppSettings, TelegramSettings
from tgmed_scraper.telegram_client import create_client


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (use YYYY-MM-DD or an ISO timestamp)"
        ) from None
    if isinstance(parsed, date) and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _channels(args: argparse.Namespace) -> list[str]:
    names = parse_channels("\n".join(args.channel or []), "--channel")
    if args.channels_file:
        names += read_channels_file(args.channels_file)  # the one parser (tgmed_common)
    if not names:
        raise ConfigError("no channel given: pass --channel NAME (repeatable) or --channels-file")
    return list(dict.fromkeys(names))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tgmed-scraper",
        description="Telegram channel posts and photos into the data lake (LAKE_DIR).",
    )
    root.add_argument("--log-level", default="INFO")
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "login",
        help="log in interactively and print a StringSession for TELEGRAM_SESSION",
        description="Needs TELEGRAM_API_ID and TELEGRAM_API_HASH. Asks for your phone "
        "number and the code Telegram sends, then prints the session string: store it "
        "as TELEGRAM_SESSION (a secret) in the environment or .env.",
    )

    scrape = commands.add_parser(
        "scrape",
        help="scrape channels incrementally (Telethon)",
        description="Needs TELEGRAM_API_ID, TELEGRAM_API_HASH and TELEGRAM_SESSION. "
        "Continues after each channel's high-water mark; a channel's first run takes "
        "the newest --limit messages (SCRAPER_FIRST_RUN_LIMIT by default) or all since "
        "--since.",
    )
    scrape.add_argument("--channel", action="append", help="channel username (repeatable)")
    scrape.add_argument("--channels-file", help="file with one channel username per line")
    scrape.add_argument("--since", type=_since, help="first run: messages from this date on")
    scrape.add_argument("--limit", type=int, help="at most this many messages per channel")
    scrape.add_argument("--no-photos", action="store_true", help="do not download photos")

    export = commands.add_parser(
        "import-export",
        help="import Telegram Desktop JSON exports",
        description="PATH is a result.json, an export folder, or a folder of export "
        "folders. Messages already imported are skipped.",
    )
    export.add_argument("path", type=Path)
    export.add_argument(
        "--channel", help="channel username for a single export (default: the folder name)"
    )
    return root


async def _login(settings: TelegramAppSettings) -> None:
    client = create_client(settings)
    await client.start()
    session = client.session.save()
    await client.disconnect()
    print("Logged in. Store this as TELEGRAM_SESSION (it is a secret, like a password):")
    print(session)


async def _scrape(args: argparse.Namespace, lake: Lake) -> dict:
    telegram = load_settings(TelegramSettings)
    register_secrets(secret_values(telegram))
    settings = load_settings(ScraperSettings)
    options = ScrapeOptions(
        since=args.since,
        limit=args.limit,
        first_run_limit=settings.first_run_limit,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
        flood_wait_max_seconds=settings.flood_wait_max_seconds,
        download_photos=settings.download_photos and not args.no_photos,
    )
    try:
        client = create_client(telegram)
    except ValueError as error:  # Telethon refuses the session string itself
        raise ConfigError(
            f"TELEGRAM_SESSION is not a valid session string ({error}): run "
            "`tgmed-scraper login` and store what it prints"
        ) from None
    await client.connect()
    try:
        if not await client.is_user_authorized():
            raise ConfigError(
                "TELEGRAM_SESSION is not a logged-in session: run `tgmed-scraper login` "
                "and store what it prints"
            )
        summary = await scrape_channels(client, lake, _channels(args), options)
    finally:
        await client.disconnect()
    return summary.as_dict()


def _run(args: argparse.Namespace) -> dict:
    lake = Lake(load_settings(LakeSettings).lake_dir)
    if args.command == "login":
        app = load_settings(TelegramAppSettings)
        register_secrets(secret_values(app))
        asyncio.run(_login(app))
        return {"stage": "login", "logged_in": True}
    if args.command == "scrape":
        return asyncio.run(_scrape(args, lake))
    return import_exports(lake, args.path, channel=args.channel).as_dict()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    return run_stage(
        args.command,
        lambda: _run(args),
        usage_errors=(FileNotFoundError,),
        transient=lambda summary: _all_transient(summary),
        set_aside=lambda summary: bool(summary.get("failed_channels") or summary.get("failed")),
    )


def _all_transient(summary: dict) -> bool:
    failed = set(summary.get("failed_channels") or {})
    return bool(failed) and failed <= set(summary.get("transient_channels") or [])


if __name__ == "__main__":
    sys.exit(main())
