"""Identity: registration, login, refresh-token rotation with reuse detection, logout, sessions,
password change and account deletion."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from taskhub.access import leaving
from taskhub.auth import repository as auth_repository
from taskhub.auth.password_rules import check_new_password
from taskhub.auth.repository import Credentials
from taskhub.auth.schemas import Account, SessionRecord
from taskhub.clock import new_id, utcnow
from taskhub.config import Settings
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, NotFound, TaskHubError, Unauthorized
from taskhub.ratelimit import LoginAttempt, RateLimiter, TooManyRequests
from taskhub.security import passwords
from taskhub.security.tokens import InvalidToken, TokenCodec, fingerprint

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = "Incorrect username or password"
BAD_REFRESH_TOKEN = "The refresh token is invalid or has expired"
WRONG_CURRENT_PASSWORD = "The current password is incorrect"  # pragma: allowlist secret


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def token_codec(settings: Settings) -> TokenCodec:
    """JWT_SECRET signs; it and JWT_PREVIOUS_SECRETS verify (key rotation)."""
    return TokenCodec(
        secret=settings.JWT_SECRET.get_secret_value(),
        issuer=settings.JWT_ISSUER,
        audience=settings.JWT_AUDIENCE,
        previous_secrets=settings.previous_jwt_secrets,
    )


def normalise_username(username: str) -> str:
    return username.lower()


async def register(
    db: Database,
    *,
    settings: Settings,
    limiter: RateLimiter,
    client_ip: str,
    username: str,
    password: str,
) -> Account:
    """Create an account; 409 if the name is taken. No token is issued here."""
    username = normalise_username(username)
    check_new_password(
        password, username=username, min_length=settings.PASSWORD_MIN_LENGTH, field="password"
    )
    counted = await limiter.admit_registration(ip=client_ip)
    # No connection is held while bcrypt runs: the INSERT comes after, on its own.
    try:
        password_hash = await passwords.hash_password(
            password, rounds=settings.bcrypt_rounds, queue_limit=settings.HASH_QUEUE_LIMIT
        )
    except passwords.HashingBusy:
        await limiter.give_back(counted)  # 503: nothing was registered (ADR 0008)
        raise
    account = await auth_repository.insert_user(
        db, user_id=new_id(), username=username, password_hash=password_hash, now=utcnow()
    )
    if account is None:
        raise Conflict("That username is already taken")
    logger.info("user registered", extra={"user_id": str(account.id)})
    return account


async def login(
    db: Database,
    *,
    settings: Settings,
    limiter: RateLimiter,
    client_ip: str,
    username: str,
    password: str,
    user_agent: str | None,
) -> IssuedTokens:
    """Check the credentials and start a session. Unknown user and wrong password look the same,
    and both count towards the failed-login limits; while limited, even the right password is 429.
    The limits are decided before the hash queue: over a limit is 429, never 503.
    """
    account, attempt = await _password_checked(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=username,
        password=password,
        refusal=BAD_CREDENTIALS,
    )
    now = utcnow()
    # The password was checked before: no connection is held while bcrypt runs.
    async with db.transaction() as tx:
        if not await auth_repository.lock_credentials(
            tx, account_id=account.id, version=account.credential_version
        ):
            # The password changed while this one was being checked: it is no longer right.
            raise Unauthorized(BAD_CREDENTIALS)
        started = await auth_repository.insert_session(
            tx,
            user_id=account.id,
            session_id=new_id(),
            now=now,
            expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_TTL),
            user_agent=_stored_user_agent(user_agent),
            version=account.credential_version,
        )
        await auth_repository.end_sessions_beyond(
            tx, user_id=account.id, keep=settings.MAX_SESSIONS_PER_USER, now=now
        )
        issued = await _issue_tokens(
            tx,
            settings=settings,
            username=account.username,
            session_id=started.id,
            session_expires_at=started.expires_at,
            now=now,
        )
    await limiter.login_succeeded(attempt)
    return issued


async def refusal_while_hashing_full(
    *, limiter: RateLimiter, username: str, client_ip: str
) -> TaskHubError:
    """What a login gets while the hash queue is full, decided as `login` would decide it: 429 if
    a limit refuses it, else 503 with nothing counted (the hit is given back at once)."""
    try:
        attempt = await limiter.admit_login(username=username, ip=client_ip)
    except TooManyRequests as refused:
        return refused
    await limiter.give_back(attempt.counted)
    return passwords.HashingBusy()


async def _password_checked(
    db: Queries,
    *,
    settings: Settings,
    limiter: RateLimiter,
    client_ip: str,
    username: str,
    password: str,
    refusal: str,
) -> tuple[Credentials, LoginAttempt]:
    """The account whose password this is, and its attempt, admitted under the login limits
    (429 past them, before the hash queue); 401 with `refusal` for a wrong password."""
    attempt = await limiter.admit_login(username=username, ip=client_ip)
    account = await _check_admitted_password(
        db,
        settings=settings,
        limiter=limiter,
        attempt=attempt,
        username=username,
        password=password,
    )
    if account is None:
        raise Unauthorized(refusal)
    return account, attempt


async def _check_admitted_password(
    db: Queries,
    *,
    settings: Settings,
    limiter: RateLimiter,
    attempt: LoginAttempt,
    username: str,
    password: str,
) -> Credentials | None:
    """The account if the password is its own; None for a wrong password or an unknown user,
    which costs the same bcrypt time. An attempt that is not checked after all (the hash queue
    is full: 503; the database is away) gives its hits back: only checked attempts count."""
    try:
        return await _account_with_password(
            db, settings=settings, username=username, password=password
        )
    except Exception:
        await limiter.give_back(attempt.counted)
        raise


async def _account_with_password(
    db: Queries, *, settings: Settings, username: str, password: str
) -> Credentials | None:
    queue_limit = settings.HASH_QUEUE_LIMIT
    # Refused before the lookup: a flood past the queue costs each attempt no query. The queue
    # is asked again when the hash is submitted, so this only refuses earlier.
    if passwords.hashing_full(queue_limit=queue_limit):
        raise passwords.HashingBusy()
    # The lookup is one statement in autocommit: its connection is back in the pool before bcrypt.
    account = await auth_repository.find_credentials(db, username=normalise_username(username))
    if account is None:
        await passwords.verify_against_dummy(
            password, rounds=settings.bcrypt_rounds, queue_limit=queue_limit
        )
        return None
    if not await passwords.verify_password(
        password, account.password_hash, queue_limit=queue_limit
    ):
        return None
    return account


def _stored_user_agent(user_agent: str | None) -> str | None:
    # The header is client-controlled: PostgreSQL refuses NUL in text, and the column holds 256.
    cleaned = (user_agent or "").replace("\x00", "")[:256]
    return cleaned or None


async def refresh(db: Database, *, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Rotate: spend the presented refresh token and issue a new pair in the same session.

    A token that was already spent is taken as stolen and its whole session is revoked.
    """
    codec = token_codec(settings)
    try:
        claims = codec.decode(refresh_token, expected_type="refresh")
    except InvalidToken:
        raise Unauthorized(BAD_REFRESH_TOKEN, invalid_token=True) from None
    now = utcnow()
    jti_hash = fingerprint(claims.jti)
    async with db.transaction() as tx:
        session_id = await auth_repository.spend_refresh_token(tx, jti_hash=jti_hash, now=now)
        if session_id is not None:
            live = await auth_repository.live_session(
                tx, session_id=session_id, username=claims.subject, now=now
            )
            if live is None or session_id != claims.session_id:
                raise Unauthorized(BAD_REFRESH_TOKEN, invalid_token=True)
            await auth_repository.touch_session(tx, session_id=session_id, now=now)
            return await _issue_tokens(
                tx,
                settings=settings,
                username=live.username,
                session_id=session_id,
                session_expires_at=live.session_expires_at,
                now=now,
            )
    # Outside the transaction: the request ends in a 401, and the revocation must stand.
    await _treat_as_reuse(db, jti_hash=jti_hash, session_id=claims.session_id, now=now)
    raise Unauthorized(BAD_REFRESH_TOKEN, invalid_token=True)


async def _treat_as_reuse(
    db: Queries, *, jti_hash: str, session_id: uuid.UUID, now: datetime
) -> None:
    if not await auth_repository.refresh_token_was_issued(db, jti_hash=jti_hash):
        return
    logger.warning(
        "refresh token reuse detected; session revoked", extra={"session_id": str(session_id)}
    )
    await auth_repository.revoke_session(db, session_id=session_id, now=now)


async def _issue_tokens(
    tx: Queries,
    *,
    settings: Settings,
    username: str,
    session_id: uuid.UUID,
    session_expires_at: datetime,
    now: datetime,
) -> IssuedTokens:
    codec = token_codec(settings)
    access_expires = min(now + timedelta(seconds=settings.ACCESS_TOKEN_TTL), session_expires_at)
    access_token, _ = codec.encode(
        token_type="access",
        subject=username,
        session_id=session_id,
        issued_at=now,
        expires_at=access_expires,
    )
    refresh_token, jti = codec.encode(
        token_type="refresh",
        subject=username,
        session_id=session_id,
        issued_at=now,
        expires_at=session_expires_at,
    )
    await auth_repository.add_refresh_token(
        tx, session_id=session_id, jti_hash=fingerprint(jti), now=now
    )
    return IssuedTokens(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=max(0, int((access_expires - now).total_seconds())),
    )


async def logout(db: Queries, *, session_id: uuid.UUID) -> None:
    await auth_repository.revoke_session(db, session_id=session_id, now=utcnow())


async def list_sessions(db: Queries, *, user_id: uuid.UUID) -> list[SessionRecord]:
    return await auth_repository.active_sessions(db, user_id=user_id, now=utcnow())


async def revoke_session(db: Queries, *, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the caller's sessions; someone else's is simply not found."""
    if not await auth_repository.revoke_own_session(
        db, user_id=user_id, session_id=session_id, now=utcnow()
    ):
        raise NotFound("Session not found")


async def _replace_password(
    db: Database, *, user_id: uuid.UUID, password_hash: str, keep_session: uuid.UUID
) -> None:
    """Store the new hash and end every other session of the user, at once: the credential
    version moves on, so a login that checked the old password meanwhile gets no live session;
    the session the change was made through moves on with it."""
    async with db.transaction() as tx:
        version = await auth_repository.replace_password(
            tx, account_id=user_id, password_hash=password_hash
        )
        await auth_repository.carry_session(tx, session_id=keep_session, version=version)
        await auth_repository.revoke_other_sessions(
            tx, user_id=user_id, keep=keep_session, now=utcnow()
        )


async def change_password(
    db: Database,
    *,
    settings: Settings,
    limiter: RateLimiter,
    client_ip: str,
    username: str,
    current_session_id: uuid.UUID,
    current_password: str,
    new_password: str,
) -> None:
    """Replace the password and end every other session of the user.

    A wrong current password counts as a failed login, so a stolen access token cannot be used
    to guess the password faster than the login form allows.
    """
    account, attempt = await _password_checked(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=username,
        password=current_password,
        refusal=WRONG_CURRENT_PASSWORD,
    )
    await limiter.login_succeeded(attempt)
    check_new_password(
        new_password,
        username=account.username,
        min_length=settings.PASSWORD_MIN_LENGTH,
        field="new_password",
    )
    # Hashed first: no connection is held while bcrypt runs.
    password_hash = await passwords.hash_password(
        new_password, rounds=settings.bcrypt_rounds, queue_limit=settings.HASH_QUEUE_LIMIT
    )
    await _replace_password(
        db, user_id=account.id, password_hash=password_hash, keep_session=current_session_id
    )


async def delete_account(db: Database, *, user_id: uuid.UUID) -> None:
    """Delete the user and, by cascade, everything they own; their tokens die with the sessions.

    A project the user owns with other members in it would be left without an owner: 409 naming
    those projects until ownership is transferred. Projects they are alone in go with them. Tasks
    in other projects stay, unassigned where they were the assignee and without a creator where
    they created them; their comments stay without an author (the foreign key's SET NULL).
    """
    for _ in range(_MEMBERSHIP_RACES):
        async with db.transaction() as tx:
            if not await leaving.lock_memberships(tx, user_id=user_id):
                continue  # made a member somewhere meanwhile: lock again, that one too
            shared = await leaving.owned_with_others(tx, user_id=user_id)
            if shared:
                raise Conflict(
                    "Transfer the ownership of these projects first: " + ", ".join(shared)
                )
            await leaving.delete_sole_projects(tx, user_id=user_id)
            await leaving.forget_person(tx, user_id=user_id, now=utcnow())
            await auth_repository.delete_user(tx, user_id=user_id)
            return
    raise Conflict("Your memberships changed while the account was being deleted; retry")


# Each round is lost only to a membership added between its two reads: a few are plenty.
_MEMBERSHIP_RACES = 3


# Ended sessions stay listed in the table for a day (for support and audit), then go.
ENDED_SESSION_RETENTION = timedelta(days=1)


async def purge_ended_sessions(db: Queries, *, now: datetime) -> int:
    return await auth_repository.delete_sessions_ended_before(
        db, cutoff=now - ENDED_SESSION_RETENTION
    )
