"""Projects and who belongs to them, with which role."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, UTCDateTime

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
