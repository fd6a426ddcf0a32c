"""Celery jobs: thin synchronous wrappers around async service functions."""

from __future__ import annotations

import asyncio
import os

from celery import shared_task
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from taskhub.config import load_settings
from taskhub.db import create_database
from taskhub.notifications.service import SCAN_BATCH_SIZE, scan_due_reminders

# Rows per committed batch of the scan. An operational knob, not a setting of the API: the
# worker-kill test makes batches small so that a scan is still running when the worker dies.
BATCH_SIZE_VARIABLE = "REMINDER_SCAN_BATCH_SIZE"


@shared_task(
    name="taskhub.scan_due_reminders",
    autoretry_for=(DBAPIError, PoolTimeoutError, OSError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def scan_due_reminders_job() -> int:
    """Run one reminder scan; a database failure is retried with back-off."""
    return asyncio.run(_scan())


async def _scan() -> int:
    settings = load_settings()
    # A fresh engine per run: asyncio.run() makes a new event loop each time, and pooled
    # async connections cannot move between loops.
    database = create_database(settings, pooled=False)
    try:
        return await scan_due_reminders(
            database.sessions,
            lead_time_seconds=settings.REMINDER_LEAD_TIME,
            batch_size=scan_batch_size(),
        )
    finally:
        await database.dispose()


def scan_batch_size() -> int:
    """REMINDER_SCAN_BATCH_SIZE (a positive integer) or the default, 500."""
    raw = os.environ.get(BATCH_SIZE_VARIABLE, "").strip()
    value = int(raw) if raw.isdigit() else None if raw else SCAN_BATCH_SIZE
    if not value:  # a bad value fails the job loudly rather than scanning with a surprise size
        raise ValueError(f"{BATCH_SIZE_VARIABLE} must be a positive integer, not {raw!r}")
    return value
