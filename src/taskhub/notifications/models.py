from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, UTCDateTime

TASK_DUE = "task_due"


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        # Exactly one reminder per task and due date, whatever runs the scan and how often:
        # the database refuses a second one (ADR 0007).
        UniqueConstraint("task_id", "task_due_at"),
        Index(None, "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("task.id", ondelete="CASCADE"), default=None
    )
    # The due date this reminder is for: a new due_at on the task re-arms the reminder.
    task_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    kind: Mapped[str] = mapped_column(String(32), default=TASK_DUE)
    message: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
