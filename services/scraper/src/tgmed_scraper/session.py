"""TELEGRAM_SESSION checked before anything dials: an empty, malformed or never
logged-in session is a configuration error naming the variable, and never reaches
Telethon (which would take an empty string for "a new session" and connect to
Telegram's production data centre to create one)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct
from dataclasses import dataclass

from tgmed_scraper.errors import SessionError

# Telethon's StringSession: version "1", then urlsafe base64 of
# dc id (1 byte), IPv4 or IPv6 address, port (2 bytes), auth key (256 bytes)
_VERSION = "1"
_LAYOUT = ">B{}sH256s"
_ENCODED_LENGTHS = {352: 4, 368: 16}  # base64 length -> address bytes
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_WHAT_TO_DO = (
    "run `tgmed-scraper login` and store the string it prints as TELEGRAM_SESSION "
    "(in the environment or .env)"
)


@dataclass(frozen=True)
class SessionInfo:
    """Where the session was created (never the key)."""

    dc_id: int
    server_address: str
    port: int


def check_session(value: str) -> SessionInfo:
    """The session string's parts, or SessionError naming TELEGRAM_SESSION. The value
    itself never appears in the error."""
    value = value.strip()
    if not value:
        raise SessionError(f"TELEGRAM_SESSION is empty; {_WHAT_TO_DO}")
    body = value[1:]
    if (
        value[0] != _VERSION
        or len(body) not in _ENCODED_LENGTHS
        or not _URLSAFE_BASE64.fullmatch(body)
    ):
        raise SessionError(
            f"TELEGRAM_SESSION is not a Telethon session string (expected {_VERSION!r} and "
            f"then 352 or 368 base64 characters; got {len(value)} characters); {_WHAT_TO_DO}"
        )
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        dc_id, address, port, key = struct.unpack(_LAYOUT.format(_ENCODED_LENGTHS[len(body)]), raw)
    except (UnicodeEncodeError, binascii.Error, struct.error, ValueError):
        raise SessionError(
            f"TELEGRAM_SESSION is not a Telethon session string (it does not decode); {_WHAT_TO_DO}"
        ) from None
    if not any(key):
        raise SessionError(
            f"TELEGRAM_SESSION holds no authorization key (a session that never logged "
            f"in); {_WHAT_TO_DO}"
        )
    if dc_id == 0 or port == 0:
        raise SessionError(
            f"TELEGRAM_SESSION names no data centre (DC {dc_id}, port {port}); {_WHAT_TO_DO}"
        )
    return SessionInfo(dc_id, ipaddress.ip_address(address).compressed, port)


def unknown_key_error() -> SessionError:
    """What to say when the server does not know the session's authorization key."""
    return SessionError(
        "TELEGRAM_SESSION is not known to the Telegram server (its authorization key "
        "was revoked, expired, or belongs to another server: see TELEGRAM_SERVER); " + _WHAT_TO_DO
    )
