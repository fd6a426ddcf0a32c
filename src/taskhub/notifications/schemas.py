from __future__ import annotations

import uuid
from typing import Any, Literal

from taskhub.notifications.repository import NotificationRecord
from taskhub.schemas import OutputModel, UTCTimestamp


class NotificationRead(OutputModel):
    id: uuid.UUID
    task_id: uuid.UUID | None
    kind: Literal["task_due"]
    message: str
    created_at: UTCTimestamp
    read_at: UTCTimestamp | None


class NotificationPage(OutputModel):
    items: list[NotificationRead]
    next_cursor: str | None


def render_notification(notification: NotificationRecord) -> dict[str, Any]:
    """NotificationRead's JSON, for every route that returns a notification."""
    return {
        "id": notification.id,
        "task_id": notification.task_id,
        "kind": notification.kind,
        "message": notification.message,
        "created_at": notification.created_at,
        "read_at": notification.read_at,
    }
