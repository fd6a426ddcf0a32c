from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from taskhub.schemas import UTCTimestamp, page_model, read_model, renderer


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """A notification, as the repository selects it and every route returns it."""

    id: uuid.UUID
    task_id: uuid.UUID | None
    kind: Literal["task_due", "token_revoked"]
    message: str
    created_at: UTCTimestamp
    read_at: UTCTimestamp | None


NotificationRead = read_model(NotificationRecord, "NotificationRead")
NotificationPage = page_model(NotificationRead, "NotificationPage")
render_notification = renderer(NotificationRecord)
