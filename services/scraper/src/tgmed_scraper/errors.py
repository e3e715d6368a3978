"""How a scrape fails, by kind, so whoever runs it can tell what to do: fix the
configuration (exit 2, not worth retrying), retry later (the network, Telegram itself,
another process holding the channel), or look at one channel (it does not exist, or
Telegram asks to wait longer than allowed)."""

from __future__ import annotations

import re

from tgmed_common.settings import ConfigError

MAX_ERROR_TEXT = 300
_BYTES_LITERAL = re.compile(r"""b(['"])(?:\\.|(?!\1).)*\1""")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ScrapeError(RuntimeError):
    """A channel could not be scraped; the message says why and what to do."""

    kind = "failed"


class ChannelUnavailable(ScrapeError):
    """The name is not a public channel this account can read."""

    kind = "unavailable"


class RateLimited(ScrapeError):
    """Telegram asks to wait longer than SCRAPER_FLOOD_WAIT_MAX_SECONDS."""

    kind = "rate_limited"


class Incomplete(ScrapeError):
    """The server holds newer messages than it handed out: the run stopped short (what
    was read is saved; the next run starts after it)."""

    kind = "incomplete"


class TransientScrapeError(ScrapeError):
    """The network, Telegram's servers or another process got in the way: the same
    scrape is expected to work later, and resumes where this one stopped."""

    kind = "transient"


class SessionError(ConfigError):
    """TELEGRAM_SESSION is missing, malformed, or not known to the server."""


class Interrupted(Exception):
    """The process was asked to stop (SIGTERM, SIGINT) and stopped cleanly."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(
            f"stopped by {signal_name}: what was fetched is saved and no temporary file "
            "is left; run again to continue where it stopped"
        )


def clean_text(text: str) -> str:
    """An error text fit for a log line and the JSON summary: no raw bytes (protocol
    errors quote the packet they choked on), no control characters, bounded length."""
    text = _BYTES_LITERAL.sub("<bytes>", text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 1] + "…"
    return text


def describe(error: BaseException) -> str:
    """`Type: message`, cleaned; Telethon's transport errors in words."""
    if type(error).__name__ == "InvalidBufferError":
        code = getattr(error, "code", None)
        if isinstance(code, int):
            return f"Telegram answered with transport error {code} instead of data"
        return "Telegram sent a malformed packet"
    message = clean_text(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
