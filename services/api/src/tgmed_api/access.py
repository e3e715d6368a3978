"""Who may ask what: every request but /health, /ready and the sign-in page carries an
API key (`Authorization: Bearer`, `X-API-Key`, or the dashboard's session cookie); the
key's scope must cover the route; each key has a request budget per window (429 with
Retry-After past it); bodies are bounded; one access-log line per request names the key
by its name and id, never the key.

A pure ASGI middleware, so that a route added later is closed unless it is listed in
OPEN: the default is to refuse.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg_pool import PoolTimeout

from tgmed_api.config import ApiSettings
from tgmed_common.api_keys import allows, hash_matches, key_id_of

log = logging.getLogger("tgmed.api")
access_log = logging.getLogger("tgmed.api.access")

OPEN = frozenset({"/health", "/ready", "/signin", "/signout"})
"""Paths answered without a key (the sign-in page checks the key it is given)."""
COOKIE = "tgmed_key"
WARM_HEADER = "x-tgmed-warm"
"""The cache warm-up's own requests (warm.py, in process) carry a random token made at
start-up that never leaves the process."""
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def needed_scope(path: str) -> str | None:
    """The scope a path needs: message texts need `posts`, the other answers `reports`;
    pages (dashboard, docs) any valid key."""
    if path.startswith("/api/search"):
        return "posts"
    if path.startswith("/api/"):
        return "reports"
    return None


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scope: str
    rate_limit: int | None

    def __str__(self) -> str:
        return f"{self.name}({self.key_id})"


class KeyStore:
    """Keys checked against auth.api_keys, each answer (found or not) remembered for
    `cache_seconds`: a revoked key is refused within that time."""

    def __init__(self, cache_seconds: float, size: int = 10_000) -> None:
        self.cache_seconds = cache_seconds
        self.size = size
        self._known: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()

    async def verify(self, pool, presented: str) -> ApiKey | None:
        key_id = key_id_of(presented)
        if key_id is None:
            return None
        now = time.monotonic()
        known = self._known.get(presented)
        if known is not None and now - known[0] < self.cache_seconds:
            return known[1]
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "select key_id, name, scope, rate_limit, secret_hash from auth.api_keys"
                " where key_id = %s and revoked_at is null",
                [key_id],
            )
            row = await cursor.fetchone()
        key = None
        if row is not None and hash_matches(presented, row["secret_hash"]):
            key = ApiKey(row["key_id"], row["name"], row["scope"], row["rate_limit"])
        self._known[presented] = (now, key)
        self._known.move_to_end(presented)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
        return key


class RateLimiter:
    """A fixed window per key: `limit` requests per `window` seconds (per API process)."""

    clock = staticmethod(time.monotonic)  # seconds; the tests move it instead of sleeping

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._windows: dict[str, tuple[float, int]] = {}

    def retry_after(self, key: ApiKey) -> float | None:
        """None when the request may go on (and is counted), else seconds to wait."""
        now = self.clock()
        start, count = self._windows.get(key.key_id, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= (key.rate_limit or self.limit):
            return self.window - (now - start)
        self._windows[key.key_id] = (start, count + 1)
        return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request carries: Authorization: Bearer, X-API-Key, or the cookie."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    if b"x-api-key" in headers:
        return headers[b"x-api-key"].decode("latin-1").strip()
    if b"cookie" in headers:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers[b"cookie"].decode("latin-1"))
        except CookieError:  # a malformed Cookie header is no credential
            return None
        if COOKIE in cookies:
            return cookies[COOKIE].value
    return None


async def respond(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessControl:
    def __init__(self, app, settings: ApiSettings, keys: KeyStore, warm_token: str) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        self.warm_token = warm_token.encode()
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_window_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def counted(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        key, admitted = await self._admit(scope, counted)
        if admitted:
            scope.setdefault("state", {})["api_key"] = key
            await self.app(scope, receive, counted)
        if self.settings.access_log:
            access_log.info(
                "%s %s %s %.1fms key=%s",
                scope["method"],
                scope["path"],
                status["code"],
                (time.perf_counter() - started) * 1000,
                key or "-",
            )

    async def _admit(self, scope: Scope, send: Send) -> tuple[ApiKey | None, bool]:
        """The request's key (None where none is needed or none is valid), and whether
        it goes on (else it has been answered)."""
        headers = _headers(scope)
        length = headers.get(b"content-length")
        if length is not None and (
            not length.isdigit() or int(length) > self.settings.max_body_bytes
        ):
            await respond(
                send, 413, f"a request body is at most {self.settings.max_body_bytes} bytes"
            )
            return None, False
        if length is None and b"transfer-encoding" in headers:
            await respond(send, 411, "send Content-Length (bodies are bounded)")
            return None, False
        path = scope["path"]
        if path in OPEN or not self.settings.auth:
            return None, True
        if hmac.compare_digest(headers.get(WARM_HEADER.encode(), b""), self.warm_token):
            return None, True
        presented = presented_key(headers)
        if not presented:
            await self._unauthenticated(scope, send, "an API key is needed")
            return None, False
        try:
            key = await self.keys.verify(scope["app"].state.pool, presented)
        except (psycopg.Error, PoolTimeout) as error:
            log.warning("API keys not readable: %s", type(error).__name__)
            await respond(send, 503, "the key store is unavailable; retry shortly (or run init-db)")
            return None, False
        if key is None:
            await self._unauthenticated(scope, send, "unknown or revoked API key")
            return None, False
        needed = needed_scope(path)
        if not allows(key.scope, needed):
            await respond(send, 403, f"this key's scope ({key.scope}) does not cover {needed}")
            return key, False
        wait = self.limiter.retry_after(key)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            await respond(
                send,
                429,
                f"rate limit: {key.rate_limit or self.limiter.limit} requests per "
                f"{self.limiter.window:g} s; retry in {seconds} s",
                [(b"retry-after", str(seconds).encode())],
            )
            return key, False
        return key, True

    async def _unauthenticated(self, scope: Scope, send: Send, detail: str) -> None:
        """401 for API clients; a browser asking for a page goes to the sign-in page."""
        accept = _headers(scope).get(b"accept", b"")
        if (
            scope["method"] == "GET"
            and not scope["path"].startswith("/api/")
            and b"text/html" in accept
        ):
            target = quote(scope["path"], safe="/")
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", f"/signin?next={target}".encode()),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await respond(send, 401, detail, [(b"www-authenticate", b'Bearer realm="tgmed"')])
