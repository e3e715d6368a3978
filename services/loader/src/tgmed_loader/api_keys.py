"""API keys in PostgreSQL (`tgmed-loader keys create|list|revoke`): created with a name
and a scope, listed without their secrets, revoked by name or id. Only the key's id and
hash are stored (tgmed_common.api_keys); the key itself is shown once, at creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from tgmed_common.api_keys import SCOPES, key_hash, new_key
from tgmed_common.settings import ConfigError


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    scope: str
    rate_limit: int | None
    created_at: datetime
    revoked_at: datetime | None

    def as_dict(self) -> dict:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope,
            "rate_limit": self.rate_limit,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


_COLUMNS = "key_id, name, scope, rate_limit, created_at, revoked_at"


def create_key(
    conn: psycopg.Connection, name: str, scope: str, rate_limit: int | None = None
) -> tuple[KeyInfo, str]:
    """A new key named `name` (unique among the keys not revoked): its row and the key."""
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise ConfigError(f"key name {name!r}: 1 to 64 printable characters")
    if scope not in SCOPES:
        raise ConfigError(f"scope {scope!r}: one of {', '.join(SCOPES)}")
    if rate_limit is not None and rate_limit < 1:
        raise ConfigError(f"rate limit {rate_limit}: at least 1 request per window")
    key_id, key = new_key()
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(KeyInfo)) as cur:
            cur.execute(
                f"insert into auth.api_keys (key_id, name, scope, secret_hash, rate_limit)"  # noqa: S608 (fixed text)
                f" values (%s, %s, %s, %s, %s) returning {_COLUMNS}",
                [key_id, name, scope, key_hash(key), rate_limit],
            )
            info = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise ConfigError(
            f"a key named {name!r} exists: revoke it first (tgmed-loader keys revoke {name})"
        ) from None
    assert info is not None
    return info, key


def list_keys(conn: psycopg.Connection, *, revoked: bool = False) -> list[KeyInfo]:
    where = "" if revoked else " where revoked_at is null"
    with conn.cursor(row_factory=class_row(KeyInfo)) as cur:
        cur.execute(f"select {_COLUMNS} from auth.api_keys{where} order by created_at, name")  # noqa: S608
        return cur.fetchall()


def revoke_key(conn: psycopg.Connection, name_or_id: str) -> list[KeyInfo]:
    """Revoke the active key with this name or id; the keys revoked (none: nothing
    matched). The API refuses it within API_KEY_CACHE_SECONDS."""
    with conn.transaction(), conn.cursor(row_factory=class_row(KeyInfo)) as cur:
        cur.execute(
            "update auth.api_keys set revoked_at = now()"  # noqa: S608 (fixed text)
            " where revoked_at is null and (name = %s or key_id = %s)"
            f" returning {_COLUMNS}",
            [name_or_id, name_or_id],
        )
        return cur.fetchall()
