from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, TextList, UTCDateTime


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
# The sort keys a listing may walk; each has an index led by the owner and one led by the project.
SORT_COLUMNS = ("created_at", "updated_at", "priority", "due_at")


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="status"),
        CheckConstraint("priority BETWEEN 1 AND 3", name="priority"),
        # A task is personal (an owner, no project) or in a project (no owner), never both.
        CheckConstraint("(owner_id IS NULL) != (project_id IS NULL)", name="one_scope"),
        # One index per sort key and scope (the owner's personal tasks, a project's tasks), so
        # a page costs the same however many tasks a scope holds.
        *(Index(None, "owner_id", column, "id") for column in SORT_COLUMNS),
        *(Index(None, "project_id", column, "id") for column in SORT_COLUMNS),
        # Who a task is assigned to (the assignee filter, clearing a leaver's assignments).
        Index(None, "assignee_id"),
        Index(None, "creator_id"),
        # `label=`: containment on the folded labels, answered by a GIN index on PostgreSQL.
        Index("ix_task_label_keys", "label_keys", postgresql_using="gin"),
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
    # Set on a personal task only: its owner's account takes it along when deleted.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), default=None
    )
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("project.id", ondelete="CASCADE"), default=None
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    creator_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), default=None
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
    # As sent (first spelling of each), and case-folded for the `label` filter.
    labels: Mapped[list[str]] = mapped_column(TextList, default=list)
    label_keys: Mapped[list[str]] = mapped_column(TextList, default=list)
    # Bumped by every change: the task's ETag.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class TaskQuota(Base):
    """Room left under a scope's task quota (a user's personal tasks, or a project's tasks), kept
    in a few slots so that concurrent creates in one scope rarely wait for each other (ADR 0014).

    A create takes one unit from its connection's slot in the statement that inserts; when the
    slot is empty, every slot of the scope is locked, its tasks counted exactly, and the room
    left shared out again. Deletes and moves out give nothing back: the room is a lower bound,
    made exact again by the next count. A scope without rows has no room until it is counted.
    """

    __tablename__ = "task_quota"
    __table_args__ = (
        CheckConstraint("(owner_id IS NULL) != (project_id IS NULL)", name="one_scope"),
        CheckConstraint("room >= 0", name="room"),
    )

    # The user's id for their personal tasks, the project's for its tasks.
    scope_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    # The scope again, for the cascade: the rows go with the account or the project.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True, default=None
    )
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("project.id", ondelete="CASCADE"), index=True, default=None
    )
    room: Mapped[int] = mapped_column(Integer)


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
