"""API keys: their shape, their hash and their scopes (shared by the CLI that creates
them, `tgmed-loader keys`, and the API that checks them).

A key is `tgmed_<id>_<secret>`: the id (12 hex digits) is public and names the key in
lists and access logs; the secret is 32 random bytes. PostgreSQL keeps the id and the
SHA-256 of the whole key, never the key: 256 random bits need no slow hash (a password
would), and a stolen table lets nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "tgmed_"
SCOPES = {
    "reports": "aggregate answers: channels, reports, engagement, the dashboard's charts",
    "posts": "message texts: /api/search (posts as written, with their channels)",
    "all": "everything the API answers",
}
_SHAPE = re.compile(r"tgmed_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def new_key() -> tuple[str, str]:
    """A fresh (id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(text: str) -> str | None:
    """The id of something shaped like a key, else None (no database look-up for junk)."""
    match = _SHAPE.fullmatch(text)
    return match.group(1) if match else None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hash_matches(key: str, stored: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored)


def allows(scope: str, needed: str | None) -> bool:
    """Whether a key of `scope` may call a route that needs `needed` (None: any key)."""
    return needed is None or scope in ("all", needed)
