"""Hourly clean-up of rows whose purpose has passed: ended sessions, access tokens expired for a
month and expired idempotency keys."""

from __future__ import annotations

import logging

from taskhub.auth import access_tokens
from taskhub.auth import service as auth_service
from taskhub.clock import utcnow
from taskhub.db.runner import Queries
from taskhub.tasks import service as task_service

logger = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_SECONDS = 3600


async def run_housekeeping(db: Queries) -> dict[str, int]:
    """Delete what no request can use any more; safe to run anywhere, any number of times."""
    now = utcnow()
    removed = {
        "sessions": await auth_service.purge_ended_sessions(db, now=now),
        "access_tokens": await access_tokens.purge_expired(db, now=now),
        "idempotency_records": await task_service.purge_expired_idempotency_records(db, now=now),
    }
    if any(removed.values()):
        logger.info("housekeeping removed rows", extra=removed)
    return removed
