"""The shared Redis behind a circuit breaker: one connection pool, and whether Redis is believed
to answer.

Closed (the normal state): a call goes to Redis, bounded as a whole by REDIS_TIMEOUT (connecting,
waiting for the pool, every round trip). The first timeout or connection error opens the
breaker. Open: calls fail at once, without touching Redis, so their callers fall back to
in-process work (rate limits in process memory, the reminder scan on the API's own timer), and a
background probe PINGs Redis every PROBE_INTERVAL_SECONDS; its first answer closes the breaker.
So a stalled or stopped Redis costs the request that notices at most REDIS_TIMEOUT, and no later
request waits for it until it is back (ADR 0012).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from limits.errors import StorageError
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 1.0
# What "Redis did not answer" looks like: our own deadline, the driver's errors (timeouts,
# refused or dropped connections, a server still loading), a socket error, or the rate-limit
# library's wrapper around any of these.
FAILURES = (TimeoutError, OSError, RedisError, StorageError)
T = TypeVar("T")


class RedisUnavailable(Exception):
    """The breaker is open, or the call that just failed opened it: do the in-process thing."""


class RedisBreaker:
    """One per process (the rate limiter owns it): /ready, the rate limits and the reminder
    timer all ask it, and share its connection pool."""

    def __init__(
        self, url: str, *, timeout: float, probe_interval: float = PROBE_INTERVAL_SECONDS
    ) -> None:
        self.timeout = timeout
        self.probe_interval = probe_interval
        # No retries (redis-py's pool default): the breaker, not the driver, decides what a
        # failure costs.
        self.pool = ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.client: Redis = Redis(connection_pool=self.pool)
        self._opened_at: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    async def call(self, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`operation(*args)`'s result; RedisUnavailable at once while open, or after at most
        REDIS_TIMEOUT if this call finds Redis not answering (and opens the breaker)."""
        if self._opened_at is not None:
            raise RedisUnavailable
        try:
            async with asyncio.timeout(self.timeout):
                return await operation(*args)
        except FAILURES as exc:
            self.trip(exc)
        raise RedisUnavailable

    async def answers(self) -> bool:
        """Whether Redis answers a PING now; False at once while the breaker is open."""
        try:
            await self.call(self._ping)
        except RedisUnavailable:
            return False
        return True

    def trip(self, exc: BaseException) -> None:
        """Open the breaker (if it is not already) and make sure a probe is running."""
        if self._opened_at is None:
            self._opened_at = time.monotonic()
            logger.warning(
                "redis unreachable (%s): rate limits count in-process, reminders are scanned "
                "in-process, until a probe sees it back",
                type(exc).__name__,
            )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(
                self._probe_until_back(), name="redis-probe"
            )

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                async with asyncio.timeout(self.timeout):
                    await self._ping()
            except FAILURES:
                continue
            opened_at, self._opened_at = self._opened_at, None
            down_for = time.monotonic() - opened_at if opened_at is not None else 0.0
            logger.info("redis reachable again after %.1f s: shared rate limits resume", down_for)
            return

    async def _ping(self) -> Any:
        return await self.client.ping()

    async def aclose(self) -> None:
        """Stop the probe and close the pool's connections (when the app shuts down)."""
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.cancel()
            if probe.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await probe
        await self.pool.aclose()
