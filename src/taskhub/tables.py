"""Every table, at the bottom of the house: domain packages import their tables from here and
never each other's modules for a foreign key; Alembic's metadata sees them all by importing this."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, TextList, UTCDateTime

# Identity: accounts, their sessions (logins), the refresh tokens issued in them, and personal
# access tokens.


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Stored lower-cased: usernames compare case-insensitively.
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by every password change; a session lives only while it carries the same number.
    credential_version: Mapped[int] = mapped_column(Integer, server_default="0")

    def __repr__(self) -> str:  # never let the hash reach a log line through repr()
        return f"User(id={self.id!s}, username={self.username!r})"


class UserSession(Base):
    """One login. Tokens name it in `sid`; ending it ends every token of the login at once."""

    __tablename__ = "user_session"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)
    # The account's credential version when this login checked the password.
    credential_version: Mapped[int] = mapped_column(Integer, server_default="0")


class RefreshToken(Base):
    """A refresh token we issued, known by the SHA-256 of its `jti`; `used_at` marks it spent."""

    __tablename__ = "refresh_token"
    __table_args__ = (Index(None, "session_id"),)

    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_session.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AccessToken(Base):
    """A personal access token, known by the HMAC of the whole token (security.access_tokens)."""

    __tablename__ = "access_token"
    __table_args__ = (Index(None, "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(TextList)
    # Restricted to the projects in access_token_project (none left: it reaches nothing).
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AccessTokenProject(Base):
    """A project a restricted token reaches; it goes with the project."""

    __tablename__ = "access_token_project"
    __table_args__ = (Index(None, "project_id"),)

    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("access_token.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )


# Projects and who belongs to them, with which role.

IS_OWNER = text("role = 'owner'")


class Project(Base):
    __tablename__ = "project"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    archived: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by every change: the project's ETag.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class ProjectMember(Base):
    __tablename__ = "project_member"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'editor', 'commenter', 'viewer')", name="role"),
        # At most one owner per project, whatever the code does: the database refuses a second.
        Index(
            "uq_project_member_one_owner",
            "project_id",
            unique=True,
            postgresql_where=IS_OWNER,
            sqlite_where=IS_OWNER,
        ),
        # A user's projects, for the listing and the quota.
        Index(None, "user_id", "project_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Tasks, the room left under their quotas, and replayable creates.


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


# Comments on tasks; they outlive their author's account (author null) but not their task.


class Comment(Base):
    __tablename__ = "comment"
    __table_args__ = (
        # A task's comments, oldest first, one keyset page at a time.
        Index(None, "task_id", "created_at", "id"),
        Index(None, "author_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("task.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Notifications: due-date reminders, and notices about the account (a token revoked).

TASK_DUE = "task_due"
# A personal access token of the user's was reported as exposed and ended (auth.access_tokens).
TOKEN_REVOKED = "token_revoked"  # noqa: S105 - a notification kind


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
