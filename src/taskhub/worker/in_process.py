"""The periodic jobs on timers in the API process: always without REDIS_URL (there is no broker),
and the reminder scan also while Redis is unreachable (Celery beat cannot send it then)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from taskhub.config import Settings
from taskhub.db.runner import Database
from taskhub.notifications.service import scan_due_reminders
from taskhub.redis_health import RedisBreaker
from taskhub.worker.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS, run_housekeeping

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def reminder_scheduling(
    settings: Settings, database: Database, redis: RedisBreaker | None
) -> AsyncIterator[None]:
    """Without a broker, scan and keep house in-process; with one (`redis`, the process's breaker
    in front of REDIS_URL), leave both to Celery and scan in-process only while Redis does not
    answer. Scanning twice is harmless: a reminder is inserted once (ADR 0007)."""
    if redis is None:
        logger.info(
            "reminders: no REDIS_URL, scanning in-process every %ss",
            settings.REMINDER_SCAN_INTERVAL,
        )
        loops = {
            "reminder-scan": _scan_forever(settings, database, when=_always),
            "housekeeping": _housekeeping_forever(database),
        }
    else:
        logger.info(
            "reminders: scanned by the Celery worker (REDIS_URL is set); in-process while Redis "
            "is unreachable"
        )
        loops = {"reminder-scan": _scan_forever(settings, database, when=_unreachable(redis))}
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    try:
        yield
    finally:
        for loop_task in tasks:
            loop_task.cancel()
        for loop_task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task


async def _always() -> bool:
    return True


def _unreachable(redis: RedisBreaker) -> Callable[[], Awaitable[bool]]:
    async def unreachable() -> bool:
        # One PING per interval while the breaker is closed (at most REDIS_TIMEOUT); none while
        # it is open. So the timer notices a Redis that no request has found down yet.
        return not await redis.answers()

    return unreachable


async def _scan_forever(
    settings: Settings, database: Database, *, when: Callable[[], Awaitable[bool]]
) -> None:
    while True:
        if await when():
            try:
                await scan_due_reminders(database, lead_time_seconds=settings.REMINDER_LEAD_TIME)
            except Exception:  # a failed scan must not end the loop; the next one retries
                logger.exception("reminder scan failed; retrying at the next interval")
        await asyncio.sleep(settings.REMINDER_SCAN_INTERVAL)


async def _housekeeping_forever(database: Database) -> None:
    while True:
        try:
            await run_housekeeping(database)
        except Exception:  # like the scan: log, and try again next time
            logger.exception("housekeeping failed; retrying at the next interval")
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_SECONDS)
