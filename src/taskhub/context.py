"""What one request has learnt about itself, typed, for whoever reports on it.

The middleware opens a RequestContext for each HTTP request; the auth dependency fills in who is
calling, what their rate limit left and why authentication was refused; the middleware, the
metrics and the access log read it when the request is over. The request id lives here too, so
logging finds it without reaching up into the HTTP layer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

NO_REQUEST = "-"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    user_id: uuid.UUID | None = None
    # The per-user limit's headers (RateLimit-*), added to the response when it starts.
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)
    # Why authentication was refused: a metrics label, never told to the client.
    auth_failure: str | None = None
    # A personal access token restricted to some projects: its id, which every statement that
    # starts from the caller's scope is bound to (db.runner, access.scope). None: no restriction.
    reach: uuid.UUID | None = None


_current: ContextVar[RequestContext | None] = ContextVar("taskhub_request", default=None)


def open_request(request_id: str) -> tuple[RequestContext, Token[RequestContext | None]]:
    context = RequestContext(request_id=request_id)
    return context, _current.set(context)


def close_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def current_request() -> RequestContext:
    """The running request's context; a detached one outside a request (a test calling a
    dependency directly), so a writer never has to check."""
    context = _current.get()
    return context if context is not None else RequestContext(request_id=NO_REQUEST)


def current_reach() -> uuid.UUID | None:
    """The running request's project restriction; None outside a request (the worker acts for
    no token)."""
    context = _current.get()
    return context.reach if context is not None else None


def current_request_id() -> str:
    context = _current.get()
    return context.request_id if context is not None else NO_REQUEST
