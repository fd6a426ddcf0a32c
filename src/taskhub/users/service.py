"""Account rules: the caller's profile, password change, account deletion."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.auth import repository as auth_repository
from taskhub.auth.password_rules import check_new_password
from taskhub.config import Settings
from taskhub.db import utcnow
from taskhub.errors import Unauthorized
from taskhub.ratelimit import RateLimiter
from taskhub.security import passwords
from taskhub.users import repository as user_repository

WRONG_CURRENT_PASSWORD = "The current password is incorrect"  # noqa: S105 - a message


async def change_password(
    db: AsyncSession,
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
    await limiter.begin_login_attempt(username=username, ip=client_ip)
    user = await user_repository.get_by_username(db, username=username)
    if user is None:  # deleted by a concurrent request since the token was checked
        raise Unauthorized()
    if not await passwords.verify_password(current_password, user.password_hash):
        await limiter.login_failed(ip=client_ip)
        raise Unauthorized(WRONG_CURRENT_PASSWORD)
    await limiter.login_succeeded(username=user.username, ip=client_ip)
    check_new_password(
        new_password,
        username=user.username,
        min_length=settings.PASSWORD_MIN_LENGTH,
        field="new_password",
    )
    password_hash = await passwords.hash_password(new_password, rounds=settings.bcrypt_rounds)
    await user_repository.set_password_hash(db, user_id=user.id, password_hash=password_hash)
    await auth_repository.revoke_other_sessions(
        db, user_id=user.id, keep=current_session_id, now=utcnow()
    )


async def delete_account(db: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Delete the user and, by cascade, everything they own; their tokens die with the sessions."""
    await user_repository.delete_user(db, user_id=user_id)
