from __future__ import annotations

import uuid
from typing import Literal

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
