"""Without REDIS_URL there is no broker: the API process runs the periodic jobs on timers itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from taskhub.config import Settings
from taskhub.db.runner import Database
from taskhub.notifications.service import scan_due_reminders
from taskhub.worker.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS, run_housekeeping

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def reminder_scheduling(settings: Settings, database: Database) -> AsyncIterator[None]:
    """Run the scan in-process when there is no broker; otherwise leave it to Celery beat."""
    if settings.REDIS_URL is not None:
        logger.info("reminders: scanned by the Celery worker (REDIS_URL is set)")
        yield
        return
    logger.info(
        "reminders: no REDIS_URL, scanning in-process every %ss", settings.REMINDER_SCAN_INTERVAL
    )
    loops = [
        asyncio.create_task(_scan_forever(settings, database), name="reminder-scan"),
        asyncio.create_task(_housekeeping_forever(database), name="housekeeping"),
    ]
    try:
        yield
    finally:
        for loop_task in loops:
            loop_task.cancel()
        for loop_task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task


async def _scan_forever(settings: Settings, database: Database) -> None:
    while True:
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
