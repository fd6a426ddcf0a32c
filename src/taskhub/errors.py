"""Errors that carry their HTTP status, and the handlers that render every error as problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from taskhub.db.runner import IntegrityViolation

PROBLEM_JSON = "application/problem+json"
KNOWN_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

logger = logging.getLogger(__name__)
CONCURRENT_CHANGE = "A concurrent change refused this write; nothing was stored, retry"


class TaskHubError(Exception):
    """Base of every error a client may see. Subclasses fix the status and title."""

    status: int = 500
    detail: str = "Internal Server Error"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = dict(headers or {})

    def extra(self) -> dict[str, Any]:
        return {}


class BadRequest(TaskHubError):
    status = 400
    detail = "The request could not be understood"


class Unauthorized(TaskHubError):
    status = 401
    detail = "Not authenticated"

    def __init__(self, detail: str | None = None, *, invalid_token: bool = False):
        challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(TaskHubError):
    """A member whose role does not allow the action; `detail` names the least role that would."""

    status = 403
    detail = "Your role in this project does not allow that"


class InsufficientScope(TaskHubError):
    """A personal access token whose scopes do not cover the route (RFC 6750 3.1); `scope` is
    the scope it would need, or `session` for a route no token may use."""

    status = 403

    def __init__(self, scope: str) -> None:
        if scope == "session":
            detail = "This route needs a session: a personal access token cannot use it"
        else:
            detail = f"This token lacks the {scope} scope"
        challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class NotFound(TaskHubError):
    status = 404
    detail = "Not found"


class Conflict(TaskHubError):
    status = 409
    detail = "Conflict"


class PreconditionFailed(TaskHubError):
    status = 412
    detail = "The resource changed since the version named in If-Match"


class ValidationFailed(TaskHubError):
    """A 422 raised by a service rule, shaped like Pydantic's errors."""

    status = 422
    detail = "Validation failed"

    def __init__(self, *, loc: Sequence[str | int], msg: str, type_: str = "value_error"):
        super().__init__(msg)
        self.errors = [{"loc": list(loc), "msg": msg, "type": type_}]

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class RefusedBody(StarletteHTTPException):
    """A request body refused while it is decoded (taskhub.http.bodies), before any validation.

    An HTTPException rather than a TaskHubError: FastAPI reads the body of a route with a body
    parameter itself, and passes an HTTPException raised there on as it is, where any other
    exception would become a bare 400. Rendered by the same handler, `errors` included.
    """

    def __init__(
        self, status: int, detail: str, *, errors: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        super().__init__(status, detail)
        self.errors = [dict(error) for error in errors]


class ServiceUnavailable(TaskHubError):
    status = 503
    detail = "A dependency is unavailable; retry later"


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": problem_title(status), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def problem_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _taskhub_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaskHubError)  # noqa: S101 - registered for this type only
    return problem_response(exc.status, exc.detail, headers=exc.headers, **exc.extra())


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; RFC 9110 wants them all.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request))) or headers.get("Allow", "")
    extra = {"errors": exc.errors} if isinstance(exc, RefusedBody) and exc.errors else {}
    return problem_response(exc.status_code, detail, headers=headers, **extra)


def _allowed_methods(request: Request) -> set[str]:
    # Ask the router itself, one method at a time: included routers are opaque routes.
    allowed = set()
    for method in KNOWN_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return allowed


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [_public_error(error) for error in exc.errors()]
    if any(error["type"] == "json_invalid" for error in errors):
        return problem_response(400, "The request body is not valid JSON")
    return problem_response(422, "The request failed validation", errors=errors)


def _public_error(error: Mapping[str, Any]) -> dict[str, Any]:
    # Only loc/msg/type: echoing `input` back could reflect passwords into responses.
    return {
        "loc": list(error.get("loc", ())),
        "msg": str(error.get("msg", "")),
        "type": error.get("type", ""),
    }


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and not _is_connection_problem(exc):
        raise exc
    logger.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(503, ServiceUnavailable.detail, headers={"Retry-After": "5"})


async def _statement_cancelled(_request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL ended a statement that ran past DB_STATEMENT_TIMEOUT (a lock held elsewhere, an
    # overloaded server): nothing of it was applied, and the same request may well work later.
    logger.warning("database statement cancelled: %s", type(exc).__name__)
    return problem_response(503, ServiceUnavailable.detail, headers={"Retry-After": "5"})


async def _constraint_refused(_request: Request, exc: Exception) -> JSONResponse:
    # A constraint refused a write because a concurrent request changed what it relied on (the
    # caller's account deleted meanwhile, say): nothing was stored, and the client may retry.
    logger.info("write refused by a constraint: %s", type(exc).__name__)
    return problem_response(409, CONCURRENT_CHANGE)


def _is_connection_problem(exc: DBAPIError) -> bool:
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TaskHubError, _taskhub_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityViolation, _constraint_refused)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    # The hot-path statements (taskhub.db.runner) reach psycopg and its pool directly.
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(psycopg.InterfaceError, _database_unavailable)
    # A subclass of OperationalError, named for the log: statement_timeout (DB_STATEMENT_TIMEOUT).
    app.add_exception_handler(psycopg.errors.QueryCanceled, _statement_cancelled)
