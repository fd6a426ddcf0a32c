"""Celery jobs: thin synchronous wrappers around async service functions."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from celery import shared_task
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from taskhub.config import load_settings
from taskhub.db.engine import create_database
from taskhub.notifications.service import scan_due_reminders
from taskhub.worker.housekeeping import run_housekeeping

# A database failure is retried with exponential back-off and jitter.
RETRY_ON_DATABASE_ERRORS: dict[str, Any] = {
    "autoretry_for": (DBAPIError, PoolTimeoutError, psycopg.OperationalError, OSError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="taskhub.scan_due_reminders", **RETRY_ON_DATABASE_ERRORS)
def scan_due_reminders_job() -> int:
    """Run one reminder scan; a database failure is retried with back-off."""
    return asyncio.run(_scan())


async def _scan() -> int:
    settings = load_settings()
    # A fresh handle per run: asyncio.run() makes a new event loop each time, and pooled
    # async connections cannot move between loops.
    database = create_database(settings, pooled=False)
    try:
        return await scan_due_reminders(
            database,
            lead_time_seconds=settings.REMINDER_LEAD_TIME,
            batch_size=settings.REMINDER_SCAN_BATCH_SIZE,
        )
    finally:
        await database.dispose()


@shared_task(name="taskhub.housekeeping", **RETRY_ON_DATABASE_ERRORS)
def housekeeping_job() -> dict[str, int]:
    """Delete ended sessions and expired idempotency records."""
    return asyncio.run(_housekeeping())


async def _housekeeping() -> dict[str, int]:
    database = create_database(load_settings(), pooled=False)
    try:
        return await run_housekeeping(database)
    finally:
        await database.dispose()
