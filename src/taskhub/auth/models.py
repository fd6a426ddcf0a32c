"""The identity tables: accounts, their sessions (logins) and the refresh tokens issued in them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from taskhub.clock import new_id, utcnow
from taskhub.db.schema import Base, UTCDateTime


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
