"""Every query about sessions and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.auth.models import RefreshToken, UserSession
from taskhub.statements import Row, StatementRunner
from taskhub.users.models import User


async def create_session(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
    user_agent: str | None,
) -> UserSession:
    user_session = UserSession(
        user_id=user_id,
        created_at=now,
        last_used_at=now,
        expires_at=expires_at,
        user_agent=user_agent,
    )
    db.add(user_session)
    await db.flush()
    return user_session


async def add_refresh_token(
    db: AsyncSession, *, session_id: uuid.UUID, jti_hash: str, now: datetime
) -> None:
    db.add(RefreshToken(jti_hash=jti_hash, session_id=session_id, created_at=now))
    await db.flush()


async def spend_refresh_token(
    db: AsyncSession, *, jti_hash: str, now: datetime
) -> uuid.UUID | None:
    """Mark an unspent token spent in one statement; of concurrent callers only one gets its session."""
    result = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.jti_hash == jti_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .returning(RefreshToken.session_id)
    )
    return result.scalar_one_or_none()


async def refresh_token_was_issued(db: AsyncSession, *, jti_hash: str) -> bool:
    result = await db.execute(
        select(RefreshToken.jti_hash).where(RefreshToken.jti_hash == jti_hash)
    )
    return result.scalar_one_or_none() is not None


async def active_session_user(
    db: AsyncSession, *, session_id: uuid.UUID, username: str, now: datetime
) -> tuple[User, UserSession] | None:
    """The user and session behind a token, if both are still live: the whole check in one query."""
    result = await db.execute(
        select(User, UserSession)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.id == session_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            User.username == username,
        )
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])


# Every authenticated request runs this: built once, and only the columns the caller needs.
_LIVE_SESSION_USER = (
    select(User.id, User.username, User.created_at)
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        UserSession.id == bindparam("session_id"),
        UserSession.revoked_at.is_(None),
        UserSession.expires_at > bindparam("now"),
        User.username == bindparam("username"),
    )
)


async def live_session_user(
    statements: StatementRunner, *, session_id: uuid.UUID, username: str, now: datetime
) -> Row | None:
    """(id, username, created_at) of the user behind a live session, or None: one query."""
    rows = await statements.rows(
        _LIVE_SESSION_USER, {"session_id": session_id, "username": username, "now": now}
    )
    return rows[0] if rows else None


async def touch_session(db: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> None:
    await db.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_used_at=now)
    )


async def revoke_session(db: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> None:
    await db.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_own_session(
    db: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
) -> bool:
    """Revoke one of the user's active sessions; False when there is no such session of theirs."""
    result = await db.execute(
        update(UserSession)
        .where(
            UserSession.id == session_id,
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
        .values(revoked_at=now)
        .returning(UserSession.id)
    )
    return result.scalar_one_or_none() is not None


async def revoke_other_sessions(
    db: AsyncSession, *, user_id: uuid.UUID, keep: uuid.UUID, now: datetime
) -> None:
    await db.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user_id, UserSession.id != keep, UserSession.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )


async def list_active_sessions(
    db: AsyncSession, *, user_id: uuid.UUID, now: datetime
) -> list[UserSession]:
    result = await db.execute(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
        .order_by(UserSession.created_at.desc(), UserSession.id.desc())
    )
    return list(result.scalars())


async def delete_sessions_ended_before(db: AsyncSession, *, cutoff: datetime) -> int:
    """Sessions that expired or were revoked before `cutoff`, with their refresh tokens (cascade)."""
    result = await db.execute(
        delete(UserSession)
        .where(or_(UserSession.expires_at < cutoff, UserSession.revoked_at < cutoff))
        .returning(UserSession.id)
    )
    return len(result.all())
