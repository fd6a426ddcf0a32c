"""Liveness and readiness. Public: a load balancer calls them without a token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import literal, select

from taskhub.db.runner import Database
from taskhub.errors import problem_response
from taskhub.http.openapi import error_responses
from taskhub.redis_health import RedisBreaker

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
READY_CACHE_SECONDS = 1.0
_SELECT_ONE = select(literal(1))


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is serving. Checks no dependency."""
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(request: Request) -> Any:
    """200 when the database (and Redis, where configured) answers; 503 naming what failed."""
    state = request.app.state
    readiness: Readiness = state.readiness
    checks = await readiness.checks(lambda: _check(state.database, state.rate_limiter.redis))
    failed = sorted(name for name, ok in checks.items() if not ok)
    report = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    if failed:
        return problem_response(
            503, f"unavailable: {', '.join(failed)}", headers={"Retry-After": "5"}, checks=report
        )
    return JSONResponse({"status": "ok", "checks": report})


class Readiness:
    """The last readiness checks, kept for READY_CACHE_SECONDS: however many probes call /ready,
    a process checks its dependencies at most once a second, and callers that arrive while a
    check runs wait for that one."""

    def __init__(self, ttl: float = READY_CACHE_SECONDS) -> None:
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._checks: dict[str, bool] = {}
        self._expires_at = 0.0

    async def checks(self, check: Callable[[], Awaitable[dict[str, bool]]]) -> dict[str, bool]:
        if time.monotonic() < self._expires_at:
            return self._checks
        async with self._lock:
            if time.monotonic() >= self._expires_at:  # else: checked while this caller waited
                self._checks = await check()
                self._expires_at = time.monotonic() + self._ttl
        return self._checks


async def _check(database: Database, redis: RedisBreaker | None) -> dict[str, bool]:
    """Both on the app's own connections: the database through its pool, Redis through the
    breaker's pool (and not at all while the breaker is open: it is down until the probe says
    otherwise)."""
    checks = {"database": await _database_ok(database)}
    if redis is not None:
        checks["redis"] = await redis.answers()
    return checks


async def _database_ok(database: Database) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await database.scalar(_SELECT_ONE, {})
    except Exception as exc:  # any failure means "not ready"; the log says which kind
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        return False
    return True
