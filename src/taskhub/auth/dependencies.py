"""The one way a request is authenticated: every protected route declares what it needs of its
caller with `needs(...)` (a scope, `SESSION` or `ANY_TOKEN`, taskhub.access.grants) and gets the
`Principal`. A route that declares nothing does not start (taskhub.http.routing)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer

from taskhub.access.grants import ALL_NEEDS, Need, Scope, granted_by
from taskhub.access.grants import need as need_of
from taskhub.auth import access_tokens
from taskhub.auth import repository as auth_repository
from taskhub.auth.schemas import Account
from taskhub.auth.service import token_codec
from taskhub.clock import utcnow
from taskhub.config import Settings
from taskhub.context import current_request
from taskhub.errors import InsufficientScope, Unauthorized
from taskhub.http.routing import declared
from taskhub.ratelimit import RateLimiter
from taskhub.security.access_tokens import is_token_like, well_formed
from taskhub.security.tokens import InvalidToken

# The scheme OpenAPI declares for every route that declares a need (taskhub.http.openapi), so
# Swagger UI's "Authorize" works; the header itself is parsed below. It is not a dependency:
# one fewer per request on every authenticated route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

INVALID_TOKEN = "The access token is invalid or has expired"  # noqa: S105 - a message


@dataclass(frozen=True, slots=True)
class Grant:
    """What a personal access token grants: its scopes (the reads its writes include), and
    whether it is restricted to some projects (access.scope reads which)."""

    token_id: uuid.UUID
    scopes: frozenset[Scope]
    restricted: bool


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: through a session (login), or through a personal access token."""

    account: Account
    session_id: uuid.UUID | None
    grant: Grant | None = None

    @property
    def user_id(self) -> uuid.UUID:
        return self.account.id

    @property
    def username(self) -> str:
        return self.account.username

    @property
    def session(self) -> uuid.UUID:
        """The caller's session, on a route that needs one (`SESSION`): no token reaches it."""
        if self.session_id is None:
            raise RuntimeError("a session-only route was reached without a session")
        return self.session_id


# RFC 6750 b64token: a JWT fits it; whitespace, a second token or odd bytes do not.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def note_auth_failure(reason: str) -> None:
    """Say why authentication was refused, for the metrics (never for the client)."""
    current_request().auth_failure = reason


def _refused(reason: str) -> Unauthorized:
    note_auth_failure(reason)
    return Unauthorized(INVALID_TOKEN, invalid_token=True)


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
        raise _refused("malformed")
    return token


async def current_principal(request: Request) -> Principal:
    """Who is calling, checked in one query: a session's JWT (signature, expiry, issuer,
    audience, type, then user and session liveness), or a personal access token (its form and
    checksum before any lookup, then the token's and its user's liveness). The caller's request
    is then counted towards their rate limit.

    It runs on every authenticated request, so it reads the app's state itself rather than
    through more dependencies, and its queries are hot-path statements (taskhub.db.runner).
    """
    state = request.app.state
    token = bearer_token(request)
    if token is None:
        note_auth_failure("missing")
        raise Unauthorized()
    if is_token_like(token):
        principal = await _token_principal(request, token)
    else:
        principal = await _session_principal(state.database, state.settings, token)
    context = current_request()
    context.user_id = principal.user_id
    if principal.grant is not None and principal.grant.restricted:
        context.reach = principal.grant.token_id
    limiter: RateLimiter = state.rate_limiter
    limit = await limiter.hit_api(user_id=str(principal.user_id))
    if limit is not None:
        context.rate_limit_headers = limit.headers()
    return principal


async def _session_principal(database: Any, settings: Settings, token: str) -> Principal:
    try:
        claims = token_codec(settings).decode(token, expected_type="access")
    except InvalidToken as exc:
        raise _refused(exc.reason) from None
    live = await auth_repository.live_session(
        database, session_id=claims.session_id, username=claims.subject, now=utcnow()
    )
    if live is None:
        raise _refused("session_inactive")
    account = Account(id=live.id, username=live.username, created_at=live.created_at)
    return Principal(account=account, session_id=claims.session_id)


async def _token_principal(request: Request, token: str) -> Principal:
    state = request.app.state
    live = await access_tokens.find_live(state.database, settings=state.settings, token=token)
    if live is None:  # a malformed token was refused before any lookup: only the reason is told
        raise _refused("token_inactive" if well_formed(token) else "malformed")
    state.token_use.used(live)
    account = Account(id=live.id, username=live.username, created_at=live.created_at)
    grant = Grant(
        token_id=live.token_id, scopes=_granted(tuple(live.scopes)), restricted=live.restricted
    )
    return Principal(account=account, session_id=None, grant=grant)


@lru_cache(maxsize=512)  # a handful of distinct scope sets, looked up on every token request
def _granted(scopes: tuple[str, ...]) -> frozenset[Scope]:
    return granted_by(Scope(scope) for scope in scopes)


def _authenticator(need: Need) -> Callable[[Request], Awaitable[Principal]]:
    async def authenticate(request: Request) -> Principal:
        principal = await current_principal(request)
        grant = principal.grant
        if grant is not None and not need.allows(grant.scopes):
            note_auth_failure("insufficient_scope")
            raise InsufficientScope(need.name)
        return principal

    authenticate.__name__ = f"authenticate_{need.name.replace(':', '_').replace(' ', '_')}"
    return authenticate


# One dependency per need, made once: what a route needs is read back from them (`token_need`).
AUTHENTICATORS: dict[Need, Callable[[Request], Awaitable[Principal]]] = {
    need: _authenticator(need) for need in ALL_NEEDS
}
NEED_OF = {authenticate: need for need, authenticate in AUTHENTICATORS.items()}


def needs(need: Need | Scope) -> Any:
    """The route's authentication, declaring what it needs of a token: `needs(Scope.TASKS_READ)`,
    `needs(SESSION)`, `needs(ANY_TOKEN)`. Use as `Annotated[Principal, needs(...)]`."""
    declared = need_of(need) if isinstance(need, Scope) else need
    return Depends(AUTHENTICATORS[declared])


def token_need(route: APIRoute) -> str | None:
    """What a token needs on the route (a scope, `session`, `any token`); None for a public one."""
    found = declared(route, NEED_OF)
    return NEED_OF[found[0]].name if found else None


async def authenticate_route(route: APIRoute, request: Request) -> None:
    """The route's authentication on its own (nothing for a public route): raises what it would
    refuse the request with. For an answer that must wait for it (a malformed body)."""
    found = declared(route, NEED_OF)
    if found:
        await found[0](request)
