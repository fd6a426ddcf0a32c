"""Account rules: password change and account deletion. Identity itself lives in auth."""

from __future__ import annotations

import uuid

from taskhub.auth import service as auth_service
from taskhub.auth.password_rules import check_new_password
from taskhub.clock import utcnow
from taskhub.config import Settings
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, Unauthorized
from taskhub.projects import repository as project_repository
from taskhub.ratelimit import RateLimiter
from taskhub.security import passwords
from taskhub.tasks import repository as task_repository

WRONG_CURRENT_PASSWORD = "The current password is incorrect"  # noqa: S105 - a message


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
    attempt = await limiter.admit_login(username=username, ip=client_ip)
    account = await auth_service.check_admitted_password(
        db,
        settings=settings,
        limiter=limiter,
        attempt=attempt,
        username=username,
        password=current_password,
    )
    if account is None:
        raise Unauthorized(WRONG_CURRENT_PASSWORD)
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
    await auth_service.replace_password(
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
            if not await _lock_memberships(tx, user_id=user_id):
                continue  # made a member somewhere meanwhile: lock again, that one too
            shared = await project_repository.owned_with_others(tx, caller_id=user_id)
            if shared:
                raise Conflict(
                    "Transfer the ownership of these projects first: " + ", ".join(shared)
                )
            await project_repository.delete_sole_projects(tx, caller_id=user_id)
            await task_repository.forget_person(tx, user_id=user_id, now=utcnow())
            await auth_service.delete_account(tx, user_id=user_id)
            return
    raise Conflict("Your memberships changed while the account was being deleted; retry")


# Each round is lost only to a membership added between its two reads: a few are plenty.
_MEMBERSHIP_RACES = 3


async def _lock_memberships(tx: Queries, *, user_id: uuid.UUID) -> bool:
    """Lock every project the user is a member of, as a transfer or member change of it would,
    then the user (no membership of theirs can be added after that); False if one was added
    between the two, which is then not locked.

    A transfer that makes the user an owner therefore commits either before the ownership check
    below (which then sees it: 409) or after the deletion (and finds no such member: 404)."""
    locked = await project_repository.lock_member_projects(tx, caller_id=user_id)
    await project_repository.lock_caller(tx, caller_id=user_id)
    return await project_repository.member_project_ids(tx, caller_id=user_id) <= locked
