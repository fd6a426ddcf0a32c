"""Dependencies shared by every domain's routes: the app's handles, read from its state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from taskhub.config import Settings
from taskhub.db.runner import Database
from taskhub.ratelimit import RateLimiter
from taskhub.security.client_ip import client_ip


# The small dependencies below are `async def` on purpose: FastAPI runs a plain `def` dependency
# in the thread pool, a thread hop per request for what is an attribute read.
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def get_client_ip(request: Request) -> str:
    """The socket peer, or the X-Forwarded-For hop our TRUSTED_PROXIES saw."""
    return client_ip(request, request.app.state.trusted_proxies)


# The one data-access handle (taskhub.db.runner): single statements in autocommit, and
# `transaction()` for the writes that need several.
Db = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
ClientIP = Annotated[str, Depends(get_client_ip)]
