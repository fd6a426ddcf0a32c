"""Every query about accounts, sessions and refresh tokens. A user's own sessions are reached
only through `_own_sessions`: another user's session is simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as upsert

from taskhub.auth.schemas import Account, SessionRecord
from taskhub.db.runner import Queries, columns_of, selecting
from taskhub.tables import RefreshToken, User, UserSession


@dataclass(frozen=True, slots=True)
class Credentials:
    """What login checks; never rendered."""

    id: uuid.UUID
    username: str
    password_hash: str
    credential_version: int


@dataclass(frozen=True, slots=True)
class LiveSession:
    """The account behind a session that is neither revoked nor expired."""

    id: uuid.UUID
    username: str
    created_at: datetime
    session_expires_at: datetime


@dataclass(frozen=True, slots=True)
class StartedSession:
    id: uuid.UUID
    expires_at: datetime


_ACCOUNT = columns_of(Account, User)

_INSERT_USER = (
    upsert(User)
    .values(
        id=bindparam("id"),
        username=bindparam("username"),
        password_hash=bindparam("password_hash"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=[User.username])
    .returning(*_ACCOUNT)
)
_CREDENTIALS = select(
    *selecting(Credentials, User.id, User.username, User.password_hash, User.credential_version)
).where(User.username == bindparam("username"))
# Taken by a login's transaction: waits for a password change in flight, and finds nothing
# once one has committed since the password was checked.
_LOCK_CREDENTIALS = (
    select(User.id)
    .where(User.id == bindparam("account_id"), User.credential_version == bindparam("version"))
    .with_for_update()
)
_REPLACE_PASSWORD = (
    update(User)
    .where(User.id == bindparam("account_id"))
    .values(password_hash=bindparam("hash"), credential_version=User.credential_version + 1)
    .returning(User.credential_version)
)
# Tasks, sessions and notifications go with the user through ON DELETE CASCADE.
_DELETE_USER = delete(User).where(User.id == bindparam("user_id"))


async def insert_user(
    db: Queries, *, user_id: uuid.UUID, username: str, password_hash: str, now: datetime
) -> Account | None:
    """The new account; None when the username is taken (the unique index decides)."""
    params = {
        "id": user_id,
        "username": username,
        "password_hash": password_hash,
        "created_at": now,
    }
    return await db.record(_INSERT_USER, params, Account)


async def find_credentials(db: Queries, *, username: str) -> Credentials | None:
    return await db.record(_CREDENTIALS, {"username": username}, Credentials)


async def lock_credentials(db: Queries, *, account_id: uuid.UUID, version: int) -> bool:
    """Lock the account for the transaction; False when its credentials changed since `version`."""
    params = {"account_id": account_id, "version": version}
    return await db.scalar(_LOCK_CREDENTIALS, params) is not None


async def replace_password(db: Queries, *, account_id: uuid.UUID, password_hash: str) -> int:
    """Store the new hash and bump the credential version; returns the new version."""
    params = {"account_id": account_id, "hash": password_hash}
    version: int = await db.scalar(_REPLACE_PASSWORD, params)
    return version


async def delete_user(db: Queries, *, user_id: uuid.UUID) -> None:
    await db.execute(_DELETE_USER, {"user_id": user_id})


def _own_sessions() -> list[ColumnElement[bool]]:
    """The one scope of every query a user makes about their sessions."""
    return [UserSession.user_id == bindparam("caller_id")]


def _active() -> list[ColumnElement[bool]]:
    return [UserSession.revoked_at.is_(None), UserSession.expires_at > bindparam("now")]


# Every authenticated request runs this: the whole liveness check in one query.
_LIVE_SESSION = (
    select(
        *selecting(
            LiveSession,
            User.id,
            User.username,
            User.created_at,
            UserSession.expires_at.label("session_expires_at"),
        )
    )
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        UserSession.id == bindparam("session_id"),
        User.username == bindparam("username"),
        # A password change since this login ends it, a login that raced the change included.
        UserSession.credential_version == User.credential_version,
        *_active(),
    )
)
_INSERT_SESSION = (
    insert(UserSession)
    .values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        created_at=bindparam("now"),
        last_used_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
        user_agent=bindparam("user_agent"),
        credential_version=bindparam("version"),
    )
    .returning(*selecting(StartedSession, UserSession.id, UserSession.expires_at))
)
# The newest `keep` active sessions stay; older ones end (oldest first past the cap).
_END_SESSIONS_BEYOND = (
    update(UserSession)
    .where(
        UserSession.id.in_(
            select(UserSession.id)
            .where(*_own_sessions(), *_active())
            .order_by(UserSession.created_at.desc(), UserSession.id.desc())
            .offset(bindparam("keep"))
        )
    )
    .values(revoked_at=bindparam("now"))
)
_CARRY_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id"))
    .values(credential_version=bindparam("version"))
)
_TOUCH_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id"))
    .values(last_used_at=bindparam("now"))
)
_REVOKE_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id"), UserSession.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_REVOKE_OWN_SESSION = (
    update(UserSession)
    .where(*_own_sessions(), UserSession.id == bindparam("session_id"), *_active())
    .values(revoked_at=bindparam("now"))
    .returning(UserSession.id)
)
_REVOKE_OTHER_SESSIONS = (
    update(UserSession)
    .where(*_own_sessions(), UserSession.id != bindparam("keep"), UserSession.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_ACTIVE_SESSIONS = (
    select(
        *selecting(
            SessionRecord,
            UserSession.id,
            UserSession.created_at,
            UserSession.last_used_at,
            UserSession.expires_at,
            UserSession.user_agent,
        )
    )
    .join(User, User.id == UserSession.user_id)
    .where(
        *_own_sessions(),
        *_active(),
        # A login that raced a password change is over, though nothing revoked it.
        UserSession.credential_version == User.credential_version,
    )
    .order_by(UserSession.created_at.desc(), UserSession.id.desc())
)
_DELETE_ENDED_SESSIONS = (
    delete(UserSession)
    .where(
        or_(
            UserSession.expires_at < bindparam("cutoff"),
            UserSession.revoked_at < bindparam("cutoff"),
        )
    )
    .returning(UserSession.id)
)


async def live_session(
    db: Queries, *, session_id: uuid.UUID, username: str, now: datetime
) -> LiveSession | None:
    params = {"session_id": session_id, "username": username, "now": now}
    return await db.record(_LIVE_SESSION, params, LiveSession)


async def insert_session(
    db: Queries,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
    user_agent: str | None,
    version: int,
) -> StartedSession:
    params = {
        "id": session_id,
        "user_id": user_id,
        "now": now,
        "expires_at": expires_at,
        "user_agent": user_agent,
        "version": version,
    }
    started = await db.record(_INSERT_SESSION, params, StartedSession)
    assert started is not None  # noqa: S101 - an INSERT ... RETURNING returns its row
    return started


async def end_sessions_beyond(db: Queries, *, user_id: uuid.UUID, keep: int, now: datetime) -> None:
    await db.execute(_END_SESSIONS_BEYOND, {"caller_id": user_id, "keep": keep, "now": now})


async def carry_session(db: Queries, *, session_id: uuid.UUID, version: int) -> None:
    """Keep a session alive across a password change made through it."""
    await db.execute(_CARRY_SESSION, {"session_id": session_id, "version": version})


async def touch_session(db: Queries, *, session_id: uuid.UUID, now: datetime) -> None:
    await db.execute(_TOUCH_SESSION, {"session_id": session_id, "now": now})


async def revoke_session(db: Queries, *, session_id: uuid.UUID, now: datetime) -> None:
    await db.execute(_REVOKE_SESSION, {"session_id": session_id, "now": now})


async def revoke_own_session(
    db: Queries, *, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
) -> bool:
    """Revoke one of the user's active sessions; False when there is no such session of theirs."""
    params = {"caller_id": user_id, "session_id": session_id, "now": now}
    return await db.count(_REVOKE_OWN_SESSION, params) > 0


async def revoke_other_sessions(
    db: Queries, *, user_id: uuid.UUID, keep: uuid.UUID, now: datetime
) -> None:
    await db.execute(_REVOKE_OTHER_SESSIONS, {"caller_id": user_id, "keep": keep, "now": now})


async def active_sessions(db: Queries, *, user_id: uuid.UUID, now: datetime) -> list[SessionRecord]:
    return await db.records(_ACTIVE_SESSIONS, {"caller_id": user_id, "now": now}, SessionRecord)


async def delete_sessions_ended_before(db: Queries, *, cutoff: datetime) -> int:
    """Sessions that expired or were revoked before `cutoff`, with their refresh tokens (cascade)."""
    return await db.count(_DELETE_ENDED_SESSIONS, {"cutoff": cutoff})


_INSERT_REFRESH_TOKEN = insert(RefreshToken).values(
    jti_hash=bindparam("jti_hash"), session_id=bindparam("session_id"), created_at=bindparam("now")
)
_SPEND_REFRESH_TOKEN = (
    update(RefreshToken)
    .where(RefreshToken.jti_hash == bindparam("token_hash"), RefreshToken.used_at.is_(None))
    .values(used_at=bindparam("now"))
    .returning(RefreshToken.session_id)
)
_REFRESH_TOKEN_ISSUED = select(RefreshToken.jti_hash).where(
    RefreshToken.jti_hash == bindparam("jti_hash")
)


async def add_refresh_token(
    db: Queries, *, session_id: uuid.UUID, jti_hash: str, now: datetime
) -> None:
    await db.execute(
        _INSERT_REFRESH_TOKEN, {"session_id": session_id, "jti_hash": jti_hash, "now": now}
    )


async def spend_refresh_token(db: Queries, *, jti_hash: str, now: datetime) -> uuid.UUID | None:
    """Mark an unspent token spent in one statement; of concurrent callers only one gets its session."""
    session_id: uuid.UUID | None = await db.scalar(
        _SPEND_REFRESH_TOKEN, {"token_hash": jti_hash, "now": now}
    )
    return session_id


async def refresh_token_was_issued(db: Queries, *, jti_hash: str) -> bool:
    return await db.scalar(_REFRESH_TOKEN_ISSUED, {"jti_hash": jti_hash}) is not None
