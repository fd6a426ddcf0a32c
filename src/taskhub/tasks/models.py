from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, UTCDateTime


class TaskStatus(enum.StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class TaskPriority(enum.IntEnum):
    """Stored as its rank so that sorting by priority is sorting by a number."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


# Joins the folded title and description in `search_text`; `q` may not contain it, so a search
# can never match across the boundary.
SEARCH_SEPARATOR = "\x1f"

PENDING_WITH_DUE_DATE = text("status != 'done' AND due_at IS NOT NULL")


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="status"),
        CheckConstraint("priority BETWEEN 1 AND 3", name="priority"),
        # One index per sort key, each led by the owner, so a page costs the same
        # however many tasks the owner has.
        Index(None, "owner_id", "created_at", "id"),
        Index(None, "owner_id", "updated_at", "id"),
        Index(None, "owner_id", "priority", "id"),
        Index(None, "owner_id", "due_at", "id"),
        # The reminder scan reads pending tasks by due date across all owners.
        Index(
            "ix_task_pending_due_at",
            "due_at",
            "id",
            postgresql_where=PENDING_WITH_DUE_DATE,
            sqlite_where=PENDING_WITH_DUE_DATE,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.TODO.value)
    priority: Mapped[int] = mapped_column(SmallInteger, default=TaskPriority.MEDIUM.value)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Case-folded title and description, written by the app: `q` searches this, so matching
    # is case-insensitive in every script on both backends (ADR 0005).
    search_text: Mapped[str] = mapped_column(Text, default="")


class IdempotencyRecord(Base):
    """The first response to a `POST /tasks` sent with an `Idempotency-Key`, replayed for 24 h."""

    __tablename__ = "idempotency_record"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_body: Mapped[str] = mapped_column(Text, default="")
    resource_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
