"""Liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter

from tgmed_api.db import fetch_one
from tgmed_api.deps import PoolDep
from tgmed_api.models import ErrorBody, Status

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Status, summary="The process is up")
async def health() -> Status:
    return Status(status="ok")


@router.get(
    "/ready",
    response_model=Status,
    summary="The database is reachable and the marts are readable",
    responses={503: {"model": ErrorBody, "description": "Database unreachable"}},
)
async def ready(pool: PoolDep) -> Status:
    await fetch_one(pool, "select 1 from marts.dim_channels limit 1")
    return Status(status="ready")
