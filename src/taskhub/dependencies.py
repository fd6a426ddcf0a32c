"""Dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.config import Settings
from taskhub.db import Database
from taskhub.ratelimit import RateLimiter
from taskhub.security.client_ip import client_ip
from taskhub.statements import StatementRunner

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit once when the route succeeds, roll back otherwise.

    Requests that only read (GET, HEAD) run in autocommit, which saves the BEGIN and COMMIT
    round trips: an authenticated read costs two queries, the auth check and its own.
    """
    database: Database = request.app.state.database
    if request.method in READ_ONLY_METHODS:
        async with database.read_sessions() as session:
            yield session
        return
    async with database.transaction() as session:
        yield session


# The small dependencies below are `async def` on purpose: FastAPI runs a plain `def` dependency
# in the thread pool, a thread hop per request for what is an attribute read.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def get_statements(request: Request) -> StatementRunner:
    database: Database = request.app.state.database
    return database.statements


async def get_client_ip(request: Request) -> str:
    """The socket peer, or the X-Forwarded-For hop our TRUSTED_PROXIES saw."""
    return client_ip(request, request.app.state.trusted_proxies)


# scope="function": the session commits when the route returns, before the response is sent,
# so a failed commit becomes an error response instead of a lost write behind a 2xx.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
ClientIP = Annotated[str, Depends(get_client_ip)]
# Hot-path statements without an ORM session (taskhub.statements).
Statements = Annotated[StatementRunner, Depends(get_statements)]
