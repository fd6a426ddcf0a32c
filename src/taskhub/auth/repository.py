"""Every query about accounts, sessions, refresh tokens and personal access tokens. A user's own
sessions and tokens are reached only through `_own_sessions` and `_own_tokens`: another user's is
simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as upsert

from taskhub.access.grants import Scope
from taskhub.auth.schemas import Account, SessionRecord, TokenRecord
from taskhub.db.runner import Queries, columns_of, selecting
from taskhub.tables import (
    AccessToken,
    AccessTokenProject,
    Notification,
    RefreshToken,
    User,
    UserSession,
)


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


# Personal access tokens.


@dataclass(frozen=True, slots=True)
class LiveToken:
    """The account behind a token that is neither deleted nor expired, and what it may do."""

    id: uuid.UUID
    username: str
    created_at: datetime
    token_id: uuid.UUID
    scopes: list[str]
    restricted: bool
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class EndedToken:
    """A token ended by whoever found it: whom to tell, and which of their tokens it was."""

    user_id: uuid.UUID
    name: str
    last4: str


_TOKEN_COLUMNS = (
    AccessToken.id,
    AccessToken.name,
    AccessToken.scopes,
    AccessToken.restricted,
    AccessToken.last4,
    AccessToken.created_at,
    AccessToken.expires_at,
    AccessToken.last_used_at,
)


@dataclass(frozen=True, slots=True)
class _StoredToken:
    id: uuid.UUID
    name: str
    scopes: list[str]
    restricted: bool
    last4: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


def _own_tokens() -> list[ColumnElement[bool]]:
    """The one scope of every query a user makes about their tokens."""
    return [AccessToken.user_id == bindparam("caller_id")]


# Every token-authenticated request runs this: the whole liveness check in one query.
_LIVE_TOKEN = (
    select(
        *selecting(
            LiveToken,
            User.id,
            User.username,
            User.created_at,
            AccessToken.id.label("token_id"),
            AccessToken.scopes,
            AccessToken.restricted,
            AccessToken.last_used_at,
        )
    )
    .join(User, User.id == AccessToken.user_id)
    .where(
        AccessToken.token_hash == bindparam("token_hash"), AccessToken.expires_at > bindparam("now")
    )
)
_INSERT_TOKEN = (
    insert(AccessToken)
    .values(
        id=bindparam("id"),
        user_id=bindparam("caller_id"),
        token_hash=bindparam("token_hash"),
        name=bindparam("name"),
        scopes=bindparam("scopes"),
        restricted=bindparam("restricted"),
        last4=bindparam("last4"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
        last_used_at=None,
    )
    .returning(*selecting(_StoredToken, *_TOKEN_COLUMNS))
)
_INSERT_TOKEN_PROJECT = (
    insert(AccessTokenProject)
    .values(token_id=bindparam("token_id"), project_id=bindparam("project_id"))
    .returning(AccessTokenProject.project_id)
)
_COUNT_LIVE_TOKENS = select(func.count()).where(
    *_own_tokens(), AccessToken.expires_at > bindparam("now")
)
_OWN_TOKENS = (
    select(*selecting(_StoredToken, *_TOKEN_COLUMNS))
    .where(*_own_tokens())
    .order_by(AccessToken.created_at.desc(), AccessToken.id.desc())
)
_OWN_TOKEN_PROJECTS = (
    select(AccessTokenProject.token_id, AccessTokenProject.project_id)
    .join(AccessToken, AccessToken.id == AccessTokenProject.token_id)
    .where(*_own_tokens())
    .order_by(AccessTokenProject.token_id, AccessTokenProject.project_id)
)
_DELETE_OWN_TOKEN = (
    delete(AccessToken)
    .where(*_own_tokens(), AccessToken.id == bindparam("token_id"))
    .returning(AccessToken.id)
)
# At most once a minute per token, whichever instance served the uses.
_TOUCH_TOKEN = (
    update(AccessToken)
    .where(
        AccessToken.id == bindparam("token_id"),
        or_(
            AccessToken.last_used_at.is_(None),
            AccessToken.last_used_at <= bindparam("stale_before"),
        ),
    )
    .values(last_used_at=bindparam("now"))
)
_END_TOKEN = (
    delete(AccessToken)
    .where(
        AccessToken.token_hash == bindparam("token_hash"), AccessToken.expires_at > bindparam("now")
    )
    .returning(*selecting(EndedToken, AccessToken.user_id, AccessToken.name, AccessToken.last4))
)
_NOTIFY = insert(Notification).values(
    id=bindparam("id"),
    user_id=bindparam("user_id"),
    task_id=None,
    task_due_at=None,
    kind=bindparam("kind"),
    message=bindparam("message"),
    created_at=bindparam("now"),
    read_at=None,
)
_DELETE_EXPIRED_TOKENS = (
    delete(AccessToken)
    .where(AccessToken.expires_at < bindparam("cutoff"))
    .returning(AccessToken.id)
)


async def live_token(db: Queries, *, token_hash: str, now: datetime) -> LiveToken | None:
    return await db.record(_LIVE_TOKEN, {"token_hash": token_hash, "now": now}, LiveToken)


async def count_live_tokens(db: Queries, *, user_id: uuid.UUID, now: datetime) -> int:
    return int(await db.scalar(_COUNT_LIVE_TOKENS, {"caller_id": user_id, "now": now}))


async def insert_token(
    db: Queries,
    *,
    user_id: uuid.UUID,
    token_id: uuid.UUID,
    token_hash: str,
    name: str,
    scopes: list[str],
    project_ids: tuple[uuid.UUID, ...] | None,
    last4: str,
    now: datetime,
    expires_at: datetime,
) -> TokenRecord:
    params = {
        "id": token_id,
        "caller_id": user_id,
        "token_hash": token_hash,
        "name": name,
        "scopes": scopes,
        "restricted": project_ids is not None,
        "last4": last4,
        "now": now,
        "expires_at": expires_at,
    }
    stored = await db.record(_INSERT_TOKEN, params, _StoredToken)
    assert stored is not None  # noqa: S101 - an INSERT ... RETURNING returns its row
    if project_ids:
        rows = [{"token_id": token_id, "project_id": project_id} for project_id in project_ids]
        await db.count_many(_INSERT_TOKEN_PROJECT, rows)
    return _token_record(stored, list(project_ids) if project_ids is not None else None)


async def own_tokens(db: Queries, *, user_id: uuid.UUID) -> list[TokenRecord]:
    """The user's tokens, newest first, each with the projects it is restricted to."""
    params = {"caller_id": user_id}
    stored = await db.records(_OWN_TOKENS, params, _StoredToken)
    reached: dict[uuid.UUID, list[uuid.UUID]] = {}
    for token_id, project_id in await db.records(_OWN_TOKEN_PROJECTS, params, _pair):
        reached.setdefault(token_id, []).append(project_id)
    return [
        _token_record(token, reached.get(token.id, []) if token.restricted else None)
        for token in stored
    ]


async def delete_own_token(db: Queries, *, user_id: uuid.UUID, token_id: uuid.UUID) -> bool:
    """Delete one of the user's tokens; False when there is no such token of theirs."""
    params = {"caller_id": user_id, "token_id": token_id}
    return await db.count(_DELETE_OWN_TOKEN, params) > 0


async def touch_token(
    db: Queries, *, token_id: uuid.UUID, now: datetime, stale_before: datetime
) -> None:
    params = {"token_id": token_id, "now": now, "stale_before": stale_before}
    await db.execute(_TOUCH_TOKEN, params)


async def end_tokens(db: Queries, *, token_hashes: list[str], now: datetime) -> list[EndedToken]:
    """Delete the live tokens among these hashes; who owned each. One statement per hash (at
    most a hundred, on a rate-limited route): SQLite cannot return rows from a batch."""
    ended: list[EndedToken] = []
    for token_hash in token_hashes:
        params = {"token_hash": token_hash, "now": now}
        ended.extend(await db.records(_END_TOKEN, params, EndedToken))
    return ended


async def notify(
    db: Queries, *, user_id: uuid.UUID, kind: str, message: str, now: datetime
) -> None:
    """A notification of the account's own (not about a task)."""
    params = {"id": uuid.uuid4(), "user_id": user_id, "kind": kind, "message": message, "now": now}
    await db.execute(_NOTIFY, params)


async def delete_tokens_expired_before(db: Queries, *, cutoff: datetime) -> int:
    return await db.count(_DELETE_EXPIRED_TOKENS, {"cutoff": cutoff})


def _pair(first: uuid.UUID, second: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    return first, second


def _token_record(token: _StoredToken, project_ids: list[uuid.UUID] | None) -> TokenRecord:
    return TokenRecord(
        id=token.id,
        name=token.name,
        scopes=[Scope(scope) for scope in token.scopes],
        project_ids=project_ids,
        last4=token.last4,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )
