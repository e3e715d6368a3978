"""Builds the app: routers, the pool's lifetime, the cache, and JSON errors that never
carry a stack trace."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from tgmed_api.cache import BuildCache
from tgmed_api.config import ApiSettings
from tgmed_api.db import build_version, make_pool
from tgmed_api.routes import channels, health, reports, search
from tgmed_common.logs import configure_logging
from tgmed_common.settings import load_settings, secret_values

log = logging.getLogger("tgmed.api")

DESCRIPTION = """
Answers the business questions from the dbt marts (schema `marts`), read through a
database role that can read nothing else. Reports are cached until the pipeline
rebuilds the marts. Errors are JSON: `{"detail": ...}`.
"""


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(settings)
        # open without waiting: the process starts (and /health answers) while the
        # database is still down; /ready says when it is reachable
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.cache = BuildCache(
            lambda: build_version(pool),
            size=settings.cache_size,
            check_seconds=settings.cache_check_seconds,
        )
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="tgmed analytical API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    for module in (health, channels, reports, search):
        app.include_router(module.router)

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
