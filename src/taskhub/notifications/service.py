"""Reminder rules: which tasks get a `task_due` notification, and reading notifications."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from taskhub.clock import new_id, utcnow
from taskhub.db.runner import Queries
from taskhub.errors import NotFound
from taskhub.notifications import repository as notification_repository
from taskhub.notifications.repository import DueTask
from taskhub.notifications.schemas import NotificationRecord
from taskhub.pagination import Position
from taskhub.tables import TASK_DUE

logger = logging.getLogger(__name__)

SCAN_BATCH_SIZE = 500
NOTIFICATION_NOT_FOUND = "Notification not found"


async def scan_due_reminders(
    db: Queries,
    *,
    lead_time_seconds: int,
    now: datetime | None = None,
    batch_size: int = SCAN_BATCH_SIZE,
) -> int:
    """Create one `task_due` notification for every pending task whose reminder time has come:
    for its owner (personal task), or its assignee, else its creator, while still a member of the
    task's project.

    Due means `due_at - lead <= now <= due_at + lead`: tasks entered with dates long past are not
    reminded. Safe to run twice, concurrently, or to die half-way: each batch commits on its own
    and the unique (task_id, task_due_at) constraint drops duplicates. Returns how many were new.
    """
    now = now or utcnow()
    lead = timedelta(seconds=lead_time_seconds)
    after: Position | None = None
    created = 0
    while True:
        batch = await notification_repository.due_tasks_batch(
            db, window_start=now - lead, window_end=now + lead, after=after, limit=batch_size
        )
        created += await notification_repository.insert_reminders(
            db, [_reminder_row(task, now) for task in batch]
        )
        if len(batch) < batch_size:
            break
        after = Position(key=batch[-1].due_at, last_id=batch[-1].id)
    if created:
        logger.info("reminders created", extra={"count": created})
    return created


def _reminder_row(task: DueTask, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "user_id": task.recipient_id,
        "task_id": task.id,
        "task_due_at": task.due_at,
        "kind": TASK_DUE,
        "message": f'Task "{task.title}" is due at {task.due_at:%Y-%m-%d %H:%M} UTC',
        "created_at": now,
    }


async def list_notifications(
    db: Queries, *, user_id: uuid.UUID, unread_only: bool, after: Position | None, limit: int
) -> list[NotificationRecord]:
    """Newest first, from `after` on."""
    return await notification_repository.list_owned(
        db, user_id=user_id, unread_only=unread_only, after=after, limit=limit
    )


async def mark_read(
    db: Queries, *, user_id: uuid.UUID, notification_id: uuid.UUID
) -> NotificationRecord:
    """Idempotent: the first read time stays. Another user's notification is not found."""
    notification = await notification_repository.mark_read(
        db, user_id=user_id, notification_id=notification_id, now=utcnow()
    )
    if notification is None:
        raise NotFound(NOTIFICATION_NOT_FOUND)
    return notification
