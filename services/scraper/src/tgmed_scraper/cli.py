"""`tgmed-scraper`: log in once, scrape channels, or import Telegram Desktop exports.

Logs go to stderr; the last line on stdout is a one-line JSON summary. Exit code 0 when
everything went through, 1 when a channel or an export failed or an export's photo was
refused (the rest still went through; a scrape's summary says `outcome`: `transient`
when every failure is worth retrying as is, `partial` otherwise), 2 for a usage or
configuration error (a missing, empty, malformed or unknown TELEGRAM_SESSION included),
128 + the signal's number when stopped by SIGTERM or SIGINT (after a clean stop and the
summary line). Launched by Dagster (Pipes), the outcome goes to the orchestrator too:
`transient` is retried, `partial` (a channel failed for good), an export set aside or a
refused photo is `set_aside`.

One `scrape` is one process with one Telegram connection for all its channels: a
session must never be used from two places at once (Telegram revokes the key).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from telethon import errors

from tgmed_common.channels import parse_channels, read_channels_file
from tgmed_common.lake import Lake, new_run_id
from tgmed_common.logs import configure_logging, register_secrets
from tgmed_common.settings import ConfigError, LakeSettings, load_settings, secret_values
from tgmed_common.stage import SetAside, StageReport, run_stage
from tgmed_scraper.errors import Interrupted, SessionError, TransientScrapeError, describe
from tgmed_scraper.export_import import import_exports
from tgmed_scraper.scrape import ScrapeOptions, ScrapeSummary, scrape_channels
from tgmed_scraper.session import check_session, unknown_key_error
from tgmed_scraper.settings import ScraperSettings, TelegramAppSettings, TelegramSettings
from tgmed_scraper.signals import StopSignals
from tgmed_scraper.telegram_client import create_client, key_exchange_error

log = logging.getLogger("tgmed_scraper")


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
    scrape.add_argument(
        "--refresh-days",
        type=int,
        metavar="N",
        help="also re-read the posts of the last N days to update their views, forwards, "
        "replies and reactions (default SCRAPER_REFRESH_DAYS=7; 0: no refresh)",
    )

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
    try:
        await client.start()
    except ConnectionError as error:
        config_error = key_exchange_error(settings, error)
        if config_error is None:
            raise
        raise config_error from None
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
        await _settled(client)
    session = client.session.save()
    await client.disconnect()
    print("Logged in. Store this as TELEGRAM_SESSION (it is a secret, like a password):")
    print(session)


async def _open(client, limit: float) -> None:
    """Connect and check the session is logged in, within `limit` seconds each."""
    try:
        async with asyncio.timeout(limit):
            await client.connect()
        async with asyncio.timeout(limit):
            authorized = await client.is_user_authorized()
    except errors.AuthKeyNotFound:
        raise unknown_key_error() from None
    except TimeoutError:
        raise TransientScrapeError(
            f"Telegram did not answer within {limit:g}s (SCRAPER_REQUEST_TIMEOUT_SECONDS) "
            "while connecting; check the network (and TELEGRAM_SERVER if set) and run again"
        ) from None
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as error:
        raise TransientScrapeError(
            f"could not connect to Telegram ({describe(error)}); check the network (and "
            "TELEGRAM_SERVER if set) and run again"
        ) from None
    if not authorized:
        raise SessionError(
            "TELEGRAM_SESSION is not a logged-in session: run `tgmed-scraper login` "
            "and store what it prints"
        )


def _options(args: argparse.Namespace, settings: ScraperSettings) -> ScrapeOptions:
    refresh_days = settings.refresh_days if args.refresh_days is None else args.refresh_days
    if refresh_days < 0:
        raise ConfigError(f"--refresh-days {refresh_days}: give 0 (no refresh) or more days")
    return ScrapeOptions(
        since=args.since,
        limit=args.limit,
        first_run_limit=settings.first_run_limit,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
        flood_wait_max_seconds=settings.flood_wait_max_seconds,
        flood_wait_total_seconds=settings.flood_wait_total_seconds,
        download_photos=settings.download_photos and not args.no_photos,
        refresh_days=refresh_days,
        request_timeout=settings.request_timeout_seconds,
        channel_timeout=settings.channel_timeout_seconds,
    )


async def _scrape(args: argparse.Namespace, lake: Lake, stop: StopSignals) -> dict:
    telegram = load_settings(TelegramSettings)
    register_secrets(secret_values(telegram))
    check_session(telegram.session.get_secret_value())  # before anything dials
    options = _options(args, load_settings(ScraperSettings))
    channels = _channels(args)
    client = create_client(telegram, timeout=options.request_timeout)
    summary = ScrapeSummary(run_id=new_run_id(), refresh_days=options.refresh_days)
    try:
        with stop.cancelling(asyncio.current_task()):
            try:
                await _open(client, options.request_timeout)
                await scrape_channels(client, lake, channels, options, summary)
            except asyncio.CancelledError:
                if stop.received is None:
                    raise
                # what the channels committed before the stop, in the summary
                raise StoppedScrape(stop.interrupted(), summary) from None
    finally:
        try:
            async with asyncio.timeout(10):
                await client.disconnect()
        except Exception as error:  # the connection may be dead already
            log.debug("disconnect: %s", describe(error))
        await _settled(client)
    return summary.as_dict()


async def _settled(client) -> None:
    """Telethon keeps why its connection ended (an unknown auth key: AuthKeyNotFound) in
    a future only `client.disconnected` reads; unread, asyncio prints it with a
    traceback at exit, after the one line that already said what to do."""
    if getattr(client, "disconnected", None) is None or client.is_connected():
        return  # a test double, or still connected (the property would make a new waiter)
    waiter = client.disconnected  # the future itself once it is done
    if waiter.done() and not waiter.cancelled():
        waiter.exception()


class StoppedScrape(Exception):
    """A stop signal ended the scrape: the signal, and what was saved before it."""

    def __init__(self, interrupted: Interrupted, summary: ScrapeSummary) -> None:
        super().__init__(str(interrupted))
        self.interrupted = interrupted
        self.summary = summary


def _failed_scrape(
    error: TransientScrapeError | Interrupted, outcome: str, summary: ScrapeSummary | None = None
) -> dict:
    """A scrape that ended before its channels did: one clear line, and a summary of
    what was saved (nothing, when it ended before any channel started)."""
    log.error("%s", error)
    body = (summary or ScrapeSummary(run_id="")).as_dict()
    body.pop("error", None)
    return {**body, "outcome": outcome, "error": str(error)}


def _run(args: argparse.Namespace, stop: StopSignals) -> dict:
    lake = Lake(load_settings(LakeSettings).lake_dir)
    if args.command == "login":
        app = load_settings(TelegramAppSettings)
        register_secrets(secret_values(app))
        asyncio.run(_login(app))
        return {"stage": "login", "logged_in": True}
    if args.command == "scrape":
        try:
            return asyncio.run(_scrape(args, lake, stop))
        except TransientScrapeError as error:
            return _failed_scrape(error, "transient")
        except StoppedScrape as stopped:
            return _failed_scrape(stopped.interrupted, "interrupted", stopped.summary)
    try:
        with stop.raising():
            settings = load_settings(ScraperSettings)
            return import_exports(
                lake,
                args.path,
                channel=args.channel,
                max_photo_bytes=settings.export_max_photo_bytes,
                max_export_bytes=settings.export_max_bytes,
            ).as_dict()
    except Interrupted as error:
        log.error("%s", error)
        return {"stage": "import-export", "outcome": "interrupted", "error": str(error)}


def stage_report(summary: dict) -> StageReport:
    """A scrape's or an import's report: the channels that failed, exports that could not
    be read, and photos refused from an export (the message kept without it: input set
    aside too, someone looks); a scrape's counts per channel."""
    # a run whose every failure is transient is retried whole: nothing is set aside; in
    # a partial run (one channel failed for good) every failed channel is listed, a
    # transient one too, since the run is not retried
    transient = summary.get("outcome") == "transient"
    retried = set(summary.get("transient_channels") or ()) if transient else set()
    failed_channels = {
        name: why
        for name, why in (summary.get("failed_channels") or {}).items()
        if name not in retried
    }
    failed_exports = summary.get("failed") or {}
    refused = [
        SetAside(where, f"photo refused, message kept: {what}")
        for where, _, what in (
            line.partition(": ") for line in summary.get("media_refused_messages") or []
        )
        if what  # not the closing "and N more"
    ]
    return StageReport.of(
        summary,
        set_aside=[
            *(
                SetAside.from_reason(f"channel {name}", why)
                for name, why in failed_channels.items()
            ),
            *(SetAside.from_reason(path, why) for path, why in failed_exports.items()),
            *refused,
        ],
        set_aside_total=len(failed_channels)
        + len(failed_exports)
        + int(summary.get("media_refused") or 0),
        channels=summary.get("by_channel") or {},
        leave_out=("by_channel",),
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # Telethon's own connection chatter (connecting, disconnecting, "the server does
        # not know the auth key") says less than our one line: shown with --log-level DEBUG
        logging.getLogger("telethon").setLevel(logging.WARNING)
    stop = StopSignals()
    code = run_stage(
        args.command,
        lambda: _run(args, stop),
        # a bad path is a usage error; bad data is not (pydantic's ValidationError is a
        # ValueError: it must not pass for a configuration error)
        usage_errors=(FileNotFoundError,),
        transient=lambda summary: summary.get("outcome") == "transient",
        failed=lambda summary: bool(summary.get("error")),
        describe=stage_report,
    )
    return stop.exit_code or code


if __name__ == "__main__":
    sys.exit(main())
