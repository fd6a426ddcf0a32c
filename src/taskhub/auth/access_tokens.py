"""Personal access tokens: made, listed and deleted by their owner through a session; ended by
whoever finds a leaked one; and looked up on every request that presents one (ADR 0016).

A token is stored as the HMAC of the whole string (security.access_tokens) under a key derived
from JWT_SECRET; tokens hashed under a key of JWT_PREVIOUS_SECRETS are still found, so rotating
the secret the usual way ends no token (dropping the previous secret does, as for sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from taskhub.access import rules
from taskhub.access.grants import Scope
from taskhub.auth import repository as auth_repository
from taskhub.auth.repository import LiveToken
from taskhub.auth.schemas import TokenRecord
from taskhub.clock import new_id, utcnow
from taskhub.config import Settings
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, NotFound, ValidationFailed
from taskhub.security.access_tokens import (
    hash_key,
    last_shown,
    new_token,
    token_hash,
    well_formed,
)
from taskhub.tables import TOKEN_REVOKED

logger = logging.getLogger(__name__)

TOKEN_NOT_FOUND = "Token not found"  # noqa: S105 - a message
# `last_used_at` is written at most this often per token, and so is at most this far behind.
LAST_USED_PRECISION = timedelta(seconds=60)
# Expired tokens stay listed (with their expiry) for this long, then go.
EXPIRED_TOKEN_RETENTION = timedelta(days=30)


def _hashes(settings: Settings, token: str) -> Iterator[str]:
    """The token's hash under the current key, then under each previous one."""
    for secret in (settings.JWT_SECRET.get_secret_value(), *settings.previous_jwt_secrets):
        yield token_hash(token, hash_key(secret))


async def find_live(db: Queries, *, settings: Settings, token: str) -> LiveToken | None:
    """The live token this string is, if any; a malformed one is never looked up. One query
    for the current key; a miss is tried under each previous key."""
    if not well_formed(token):
        return None
    now = utcnow()
    for hashed in _hashes(settings, token):
        live = await auth_repository.live_token(db, token_hash=hashed, now=now)
        if live is not None:
            return live
    return None


async def create(
    db: Database,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    name: str,
    scopes: list[Scope],
    expires_in_days: int,
    project_ids: list[uuid.UUID] | None,
) -> tuple[TokenRecord, str]:
    """A new token and its secret (shown this once). 422 for a project the user is not a member
    of; 409 past MAX_TOKENS_PER_USER live tokens, decided under the account's lock so concurrent
    creates cannot pass it together."""
    token = new_token()
    now = utcnow()
    chosen = tuple(dict.fromkeys(project_ids)) if project_ids is not None else None
    async with db.transaction() as tx:
        await rules.lock_account(tx, user_id=user_id)
        if chosen is not None and not await rules.member_of_all(
            tx, caller_id=user_id, project_ids=chosen
        ):
            raise ValidationFailed(
                loc=["body", "project_ids"], msg="each must be a project you are a member of"
            )
        live = await auth_repository.count_live_tokens(tx, user_id=user_id, now=now)
        if live >= settings.MAX_TOKENS_PER_USER:
            raise Conflict(
                f"You have {settings.MAX_TOKENS_PER_USER} live tokens (MAX_TOKENS_PER_USER): "
                "delete one first"
            )
        record = await auth_repository.insert_token(
            tx,
            user_id=user_id,
            token_id=new_id(),
            token_hash=next(_hashes(settings, token)),
            name=name,
            scopes=sorted(dict.fromkeys(scope.value for scope in scopes)),
            project_ids=chosen,
            last4=last_shown(token),
            now=now,
            expires_at=now + timedelta(days=expires_in_days),
        )
    return record, token


async def list_own(db: Queries, *, user_id: uuid.UUID) -> list[TokenRecord]:
    return await auth_repository.own_tokens(db, user_id=user_id)


async def delete_own(db: Queries, *, user_id: uuid.UUID, token_id: uuid.UUID) -> None:
    if not await auth_repository.delete_own_token(db, user_id=user_id, token_id=token_id):
        raise NotFound(TOKEN_NOT_FOUND)


async def revoke_found(db: Database, *, settings: Settings, tokens: list[str]) -> None:
    """End each of these that is a live token and tell its owner; pass over everything else.
    Nothing in the outcome says which were tokens."""
    found = [token for token in dict.fromkeys(tokens) if well_formed(token)]
    hashes = [hashed for token in found for hashed in _hashes(settings, token)]
    if not hashes:
        return
    now = utcnow()
    async with db.transaction() as tx:
        ended = await auth_repository.end_tokens(tx, token_hashes=hashes, now=now)
        for token in ended:
            message = (
                f'Your access token "{token.name}" (…{token.last4}) was reported as exposed '
                "and has been revoked. Make a new one if you still need it."
            )
            await auth_repository.notify(
                tx, user_id=token.user_id, kind=TOKEN_REVOKED, message=message[:512], now=now
            )
    if ended:
        logger.info("access tokens revoked as exposed", extra={"count": len(ended)})


async def purge_expired(db: Queries, *, now: datetime) -> int:
    return await auth_repository.delete_tokens_expired_before(
        db, cutoff=now - EXPIRED_TOKEN_RETENTION
    )


class TokenUse:
    """Records when each token was last used: off the request's path (a task of its own), at
    most once a minute per token (the UPDATE itself refuses sooner, whichever instance asks; this
    process does not even ask)."""

    # Past this many tokens remembered, those recorded over a minute ago are forgotten.
    REMEMBERED = 10_000

    def __init__(self, database: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._clock = clock
        self._recorded: dict[uuid.UUID, datetime] = {}
        self._writing: set[asyncio.Task[None]] = set()

    def used(self, live: LiveToken) -> None:
        now = self._clock()
        last = self._recorded.get(live.token_id) or live.last_used_at
        if last is not None and now - last < LAST_USED_PRECISION:
            return
        if len(self._recorded) >= self.REMEMBERED:
            self._forget_before(now - LAST_USED_PRECISION)
        self._recorded[live.token_id] = now
        task = asyncio.get_running_loop().create_task(self._write(live.token_id, now))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    def _forget_before(self, cutoff: datetime) -> None:
        self._recorded = {key: at for key, at in self._recorded.items() if at >= cutoff}

    async def _write(self, token_id: uuid.UUID, now: datetime) -> None:
        try:
            await auth_repository.touch_token(
                self._database, token_id=token_id, now=now, stale_before=now - LAST_USED_PRECISION
            )
        except Exception:  # a use not recorded is no reason to fail anything
            logger.warning("could not record an access token's use", exc_info=True)

    async def settled(self) -> None:
        """Wait for the writes under way (at shutdown; tests)."""
        while self._writing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._writing)
