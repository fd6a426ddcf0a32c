"""The one dependency that authenticates a request; every protected route takes CurrentPrincipal."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from taskhub.auth import repository as auth_repository
from taskhub.auth.schemas import Account
from taskhub.auth.service import token_codec
from taskhub.clock import utcnow
from taskhub.config import Settings
from taskhub.context import current_request
from taskhub.errors import Unauthorized
from taskhub.ratelimit import RateLimiter
from taskhub.security.tokens import InvalidToken

# The scheme OpenAPI declares for every route that depends on current_principal (taskhub.http.openapi),
# so Swagger UI's "Authorize" works; the header itself is parsed below. It is not a dependency:
# one fewer per request on every authenticated route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

INVALID_TOKEN = "The access token is invalid or has expired"  # noqa: S105 - a message


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and through which session (login)."""

    account: Account
    session_id: uuid.UUID

    @property
    def user_id(self) -> uuid.UUID:
        return self.account.id

    @property
    def username(self) -> str:
        return self.account.username


# RFC 6750 b64token: a JWT fits it; whitespace, a second token or odd bytes do not.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def note_auth_failure(reason: str) -> None:
    """Say why authentication was refused, for the metrics (never for the client)."""
    current_request().auth_failure = reason


def bearer_token(request: Request) -> str | None:
    """The token of a well-formed `Authorization: Bearer <token>` header; None if absent."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        # Another scheme (Basic...) sent no bearer token to reject: RFC 6750 3.1 says no error code.
        note_auth_failure("missing")
        raise Unauthorized()
    if not _B64TOKEN.fullmatch(token):
        note_auth_failure("malformed")
        raise Unauthorized(INVALID_TOKEN, invalid_token=True)
    return token


async def current_principal(request: Request) -> Principal:
    """Signature, expiry, issuer, audience and type, then user and session liveness in one query.

    It runs on every authenticated request, so it reads the app's state itself rather than
    through more dependencies, and its query is a hot-path statement (taskhub.db.runner).
    """
    state = request.app.state
    settings: Settings = state.settings
    limiter: RateLimiter = state.rate_limiter
    token = bearer_token(request)
    if token is None:
        note_auth_failure("missing")
        raise Unauthorized()
    try:
        claims = token_codec(settings).decode(token, expected_type="access")
    except InvalidToken as exc:
        note_auth_failure(exc.reason)
        raise Unauthorized(INVALID_TOKEN, invalid_token=True) from None
    live = await auth_repository.live_session(
        state.database, session_id=claims.session_id, username=claims.subject, now=utcnow()
    )
    if live is None:
        note_auth_failure("session_inactive")
        raise Unauthorized(INVALID_TOKEN, invalid_token=True)
    context = current_request()
    context.user_id = live.id
    limit = await limiter.hit_api(user_id=str(live.id))
    if limit is not None:
        context.rate_limit_headers = limit.headers()
    return Principal(
        account=Account(id=live.id, username=live.username, created_at=live.created_at),
        session_id=claims.session_id,
    )


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
