"""Builds the app: routers, the pool's lifetime, the cache, and JSON errors that never
carry a stack trace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from tgmed_api.access import AccessControl, KeyStore
from tgmed_api.cache import BuildCache
from tgmed_api.config import ApiSettings
from tgmed_api.db import build_version, make_pool
from tgmed_api.routes import channels, engagement, health, pages, reports, search, signin
from tgmed_api.warm import warm_default_views
from tgmed_common.logs import configure_logging
from tgmed_common.settings import load_settings, secret_values

log = logging.getLogger("tgmed.api")

DESCRIPTION = """
Answers the business questions from the dbt marts (schema `marts`), read through a
database role that can read nothing else. Reports are cached until the pipeline
rebuilds the marts. Errors are JSON: `{"detail": ...}`. Unknown values (views of posts
from an export) are `null`, never 0.

Every route but `/health` and `/ready` needs an API key (`tgmed-loader keys create NAME
--scope reports|posts|all`): `Authorization: Bearer <key>` or `X-API-Key: <key>` (the
Authorize button here), or sign in at [/signin](/signin). `reports` keys read the
aggregate answers, `posts` keys the message texts (search), `all` both. Each key has a
request budget per window (429 with `Retry-After` past it); `from`/`to` ranges are
bounded.

The dashboard is at [/dashboard/](/dashboard/), the warehouse's documentation (dbt
docs) at [/dbt-docs/](/dbt-docs/).
"""

OPEN_OPERATIONS = {"/health", "/ready"}
REFUSALS = {
    401: "No API key, or an unknown or revoked one",
    403: "The key's scope does not cover this route",
    429: "The key's request budget for the window is spent (see Retry-After)",
}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
"""Schema paths whose operations need no key (AccessControl.OPEN, less the pages)."""


def _with_security(app: FastAPI) -> None:
    """The schema says how to authenticate (Swagger UI's Authorize button): a bearer key
    or the X-API-Key header on every operation but health and readiness."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path in OPEN_OPERATIONS:
                    operation["security"] = []
                    continue
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
                for status, description in REFUSALS.items():
                    operation["responses"].setdefault(
                        str(status),
                        {
                            "description": description,
                            "content": {"application/json": {"schema": ERROR_BODY}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


INPUT_SHOWN = 100
"""Characters of a refused value echoed in a 422 (a 5,000-character query is not sent
back whole)."""


def _capped(errors: Any) -> Any:
    """Validation errors with long input values cut to INPUT_SHOWN characters."""
    if isinstance(errors, dict):
        return {key: _capped(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [_capped(value) for value in errors]
    if isinstance(errors, str) and len(errors) > INPUT_SHOWN:
        return f"{errors[:INPUT_SHOWN]}... ({len(errors):,} characters)"
    return errors


async def _watch_builds(cache: BuildCache, interval: float) -> None:
    """Read the build version every `interval` seconds, so a new build is noticed (and
    the default views warmed) without waiting for a request."""
    while True:
        try:
            await cache.refresh()
        except (psycopg.Error, PoolTimeout) as error:
            log.info("build version not readable yet: %s", type(error).__name__)
        await asyncio.sleep(interval)


async def _warm(app: FastAPI) -> None:
    version = app.state.cache.version
    views = await warm_default_views(app)
    app.state.warmed = (version, views)  # the build whose default views are cached


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(settings)
        # open without waiting: the process starts (and /health answers) while the
        # database is still down; /ready says when it is reachable
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.warmed = (None, 0)
        app.state.cache = cache = BuildCache(
            lambda: build_version(pool),
            size=settings.cache_size,
            check_seconds=settings.cache_check_seconds,
            on_change=lambda: _warm(app),
        )
        watcher = None
        if cache.enabled:
            interval = max(settings.cache_check_seconds, 0.5)
            watcher = asyncio.create_task(_watch_builds(cache, interval))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await pool.close()

    app = FastAPI(
        title="tgmed analytical API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routes/pages.py from installed assets, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keys = keys = KeyStore(settings.key_cache_seconds)
    app.state.warm_token = secrets.token_urlsafe(32)
    for module in (health, channels, reports, engagement, search, pages, signin):
        app.include_router(module.router)
    pages.mount_static(app)
    app.add_middleware(AccessControl, settings=settings, keys=keys, warm_token=app.state.warm_token)
    _with_security(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(_capped(error.errors()))}, 422)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database unavailable for %s: %s", request.url.path, type(error).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable or too slow; retry shortly"}, status_code=503
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; the server log has details"}, 500)

    return app


def app_from_env() -> FastAPI:
    """The app configured from the environment (uvicorn's factory: `tgmed-api serve`)."""
    settings = load_settings(ApiSettings)
    configure_logging(settings.log_level, secret_values(settings))
    return create_app(settings)
