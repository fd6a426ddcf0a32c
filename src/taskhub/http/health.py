"""Liveness and readiness. Public: a load balancer calls them without a token."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import literal, select

from taskhub.config import Settings
from taskhub.db.runner import Database
from taskhub.errors import problem_response
from taskhub.http.openapi import error_responses

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
_SELECT_ONE = select(literal(1))


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is serving. Checks no dependency."""
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(request: Request) -> Any:
    """200 when the database (and Redis, where configured) answers; 503 naming what failed."""
    database: Database = request.app.state.database
    settings: Settings = request.app.state.settings
    checks = {"database": await _database_ok(database)}
    if settings.REDIS_URL is not None:
        checks["redis"] = await _redis_ok(settings.REDIS_URL.get_secret_value())
    failed = sorted(name for name, ok in checks.items() if not ok)
    report = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    if failed:
        return problem_response(
            503, f"unavailable: {', '.join(failed)}", headers={"Retry-After": "5"}, checks=report
        )
    return JSONResponse({"status": "ok", "checks": report})


async def _database_ok(database: Database) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await database.scalar(_SELECT_ONE, {})
    except Exception as exc:  # any failure means "not ready"; the log says which kind
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        return False
    return True


async def _redis_ok(url: str) -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await client.ping()
    except Exception as exc:  # as above: the kind goes to the log, never the URL
        logger.warning("readiness: redis check failed: %s", type(exc).__name__)
        return False
    finally:
        await client.aclose()
    return True
