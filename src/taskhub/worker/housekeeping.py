"""Hourly clean-up of rows whose purpose has passed: ended sessions and expired idempotency keys."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskhub.auth import service as auth_service
from taskhub.db import utcnow
from taskhub.tasks import service as task_service

logger = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_SECONDS = 3600


async def run_housekeeping(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Delete what no request can use any more; safe to run anywhere, any number of times."""
    now = utcnow()
    async with sessions() as db:
        removed = {
            "sessions": await auth_service.purge_ended_sessions(db, now=now),
            "idempotency_records": await task_service.purge_expired_idempotency_records(
                db, now=now
            ),
        }
        await db.commit()
    if any(removed.values()):
        logger.info("housekeeping removed rows", extra=removed)
    return removed
