"""ASGI middleware that every response passes through: request id, safe headers, last-resort 500,
and the report of each request's outcome (metrics and the access log)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskhub.context import RequestContext, close_request, open_request
from taskhub.errors import TaskHubError, problem_response
from taskhub.http.admission import AdmissionGate, Overloaded
from taskhub.http.bodies import JSONRequest

logger = logging.getLogger("taskhub.request")

REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded",)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Says nothing about the cause: the log line with the same request id does.
UNEXPECTED_ERROR = "An unexpected error occurred; quote the request id when reporting it"
DEFAULT_MAX_BODY_BYTES = 65_536
BUSY = "The server is busy; retry later"
BUSY_HEADERS = {"Retry-After": "1"}
DEFAULT_READ_TIMEOUT = 10.0
READ_TIMEOUT = "The request did not arrive in time"
# The connection is closed after a 408: what is left of the request never comes, or comes late.
CLOSE_HEADERS = {"Connection": "close"}
# The scope extension in which the server's protocol (taskhub.http.protocol) gives, as
# {"deadline": t}, the event-loop time by which the whole request must have arrived: headers and
# body share one REQUEST_READ_TIMEOUT, counted from the request's first byte. Without it (another
# server, the test transport), the body's time counts from when the app saw the headers.
READ_DEADLINE = "taskhub.read_deadline"
# nginx's status for a client that went away before its request was read: it got no response.
CLIENT_CLOSED = 499

# The answer a hashing request gets before routing while the hash queue is full (None: route it).
HashingRefusal = Callable[[JSONRequest], Awaitable[TaskHubError | None]]
# Told of every HTTP request once it is over: scope, what the request learnt about itself, the
# final status, the headers sent with it (none if no response started) and the seconds it took.
OutcomeRecorder = Callable[[Scope, RequestContext, int, list[tuple[bytes, bytes]], float], None]


class BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in, once it passes the limit; rendered as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes")


class RequestContextMiddleware:
    """Tags every response with an `X-Request-ID` and `nosniff`, refuses bodies over the limit
    with 413 and bodies we cannot parse with 415, and turns any unhandled exception into a bare
    500 problem that names the request id. A body is read whole before anything else is done for
    the request (408 if it has not arrived within `read_timeout`), so a slow client holds no
    admission place and no database connection; then API requests past the admission limit wait
    their turn (503 after REQUEST_QUEUE_TIMEOUT). Then tells `record_outcome` what the client got.

    One layer does both, so the outcome is the final one (the 413, 415 and last-resort 500
    included) and a request pays for one wrapper of `send` instead of two.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_prefix: str,
        form_paths: frozenset[str] = frozenset(),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        record_outcome: OutcomeRecorder | None = None,
        admission: AdmissionGate | None = None,
        hashing_paths: frozenset[str] = frozenset(),
        hashing_has_room: Callable[[], bool] = lambda: False,
        refusals_while_hashing_full: Mapping[str, HashingRefusal] | None = None,
    ) -> None:
        self.app = app
        # API responses are never cached and API requests pass the admission gate; the rest
        # (probes, docs, metrics) are served as they come.
        self.api_prefix = api_prefix + "/"
        # Paths that take a form body as well as JSON (the OAuth2 password grant).
        self.form_paths = form_paths
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.record_outcome = record_outcome
        self.admission = admission
        # A request that will hash a password skips the gate while the hash queue has room: the
        # queue bounds those (HASH_QUEUE_LIMIT), and queued behind every read in the gate, logins
        # under a saturating read load lost half their rate to the wait alone. Once the queue is
        # full they take their turn in the gate like any request: a flood answered at once would
        # come back at once and take the event loop from the reads. The rate limits come first
        # (429, never 503, for an address over its limit), then the queue (503), then the hash
        # (ADR 0008): a path with a refusal of its own here (login) is answered by it, before
        # routing, so a flood past the queue costs little more than its bytes and its limits;
        # the others are refused by their service.
        self.hashing_paths = hashing_paths
        self.hashing_has_room = hashing_has_room
        self.refusals_while_hashing_full = refusals_while_hashing_full or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = _request_id(scope)
        context, token = open_request(request_id)
        api = scope["path"].startswith(self.api_prefix)
        started = False
        # The outcome reported; a request that never started a response counts as a 500.
        status = 500
        headers: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status, headers
            if message["type"] == "http.response.start":
                started = True
                headers = _with_standard_headers(message.get("headers", []), request_id, api=api)
                headers = _add_missing(headers, _rate_limit_headers(context))
                message["headers"] = headers
                status = message["status"]
            await send(message)

        try:
            if _declared_length(scope) > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            if _unsupported_body(scope, self.form_paths):
                await _send_problem(send_with_headers, 415, "Send the body as application/json")
                return
            body = b""
            if _has_body(scope):
                try:
                    read = await _read_body(receive, self.max_body_bytes, self._deadline(scope))
                except TimeoutError:
                    await _send_problem(send_with_headers, 408, READ_TIMEOUT, headers=CLOSE_HEADERS)
                    return
                if read is None:
                    status = CLIENT_CLOSED
                    return
                body = read
                receive = _replaying(body, receive)
            hashing = scope["path"] in self.hashing_paths
            gate = self.admission if api and not (hashing and self.hashing_has_room()) else None
            if gate is not None:
                try:
                    await gate.enter()
                except Overloaded:
                    await _send_problem(send_with_headers, 503, BUSY, headers=BUSY_HEADERS)
                    return
            try:
                refusal = self.refusals_while_hashing_full.get(scope["path"]) if hashing else None
                if refusal is not None and not self.hashing_has_room():
                    # A replay of its own: the route reads the body again if this passes it on.
                    refused = await refusal(JSONRequest(scope, _replaying(body, receive)))
                    if refused is not None:
                        await _send_error(send_with_headers, refused)
                        return
                await self.app(scope, receive, send_with_headers)
            finally:
                if gate is not None:
                    gate.leave()
        except BodyTooLarge as exc:
            # A declared length over the limit, or a streamed body that passed it.
            if started:
                raise
            await _send_problem(send_with_headers, 413, exc.detail)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            await _send_problem(send_with_headers, 500, UNEXPECTED_ERROR, request_id=request_id)
        finally:
            close_request(token)
            if self.record_outcome is not None:
                self.record_outcome(scope, context, status, headers, time.perf_counter() - began)

    def _deadline(self, scope: Scope) -> float:
        """When the body must have arrived, on the event loop's clock."""
        extension = (scope.get("extensions") or {}).get(READ_DEADLINE) or {}
        stamped = extension.get("deadline")
        if isinstance(stamped, float):
            return stamped
        return asyncio.get_running_loop().time() + self.read_timeout


def _add_missing(
    headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """A 429 of another limit already states its own numbers; don't state two limits at once."""
    present = {name.lower() for name, _ in headers}
    return headers + [(name, value) for name, value in extra if name not in present]


def _rate_limit_headers(context: RequestContext) -> list[tuple[bytes, bytes]]:
    """What the per-user limit left, recorded by the auth dependency in the request context."""
    recorded = context.rate_limit_headers
    return [(name.lower().encode(), value.encode()) for name, value in recorded.items()]


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = bytes(value).decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _with_standard_headers(
    headers: Any, request_id: str, *, api: bool
) -> list[tuple[bytes, bytes]]:
    """Request id, nosniff and no-referrer everywhere; API responses (tokens, personal data)
    are never stored by a browser or a shared cache."""
    replaced = {b"server", b"x-request-id", b"x-content-type-options", b"referrer-policy"}
    if api:
        replaced.add(b"cache-control")
    kept = [(name, value) for name, value in headers if name.lower() not in replaced]
    kept.append((b"x-request-id", request_id.encode("latin-1")))
    kept.append((b"x-content-type-options", b"nosniff"))
    kept.append((b"referrer-policy", b"no-referrer"))
    if api:
        kept.append((b"cache-control", b"no-store"))
    return kept


def _unsupported_body(scope: Scope, form_paths: frozenset[str]) -> bool:
    """True when a body arrives in a media type the route does not parse."""
    if scope["method"] not in BODY_METHODS or not _has_body(scope):
        return False
    content_type = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    if content_type in JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        return False
    return not (content_type in FORM_TYPES and scope["path"] in form_paths)


def _declared_length(scope: Scope) -> int:
    try:
        return int(_header(scope, b"content-length") or 0)
    except ValueError:
        return 0


async def _read_body(receive: Receive, limit: int, deadline: float) -> bytes | None:
    """The whole body, counted as it streams in (chunked bodies declare no length); None if the
    client went away first. TimeoutError once the event loop's clock passes `deadline`."""
    chunks: list[bytes] = []
    received = 0
    async with asyncio.timeout_at(deadline):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # http.disconnect
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body, already read, as one message; after it, what the server says (a disconnect)."""
    replayed = False

    async def receive_after_body() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_after_body


def _has_body(scope: Scope) -> bool:
    if _header(scope, b"transfer-encoding"):
        return True
    length = _header(scope, b"content-length")
    return bool(length) and length != "0"


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value).decode("latin-1")
    return ""


def problem_before_app(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a problem sent by the server for a request the app never saw (its
    headers never arrived whole): the standard headers, a request id of its own, and the
    connection closed after it."""
    response = problem_response(status, detail, headers=CLOSE_HEADERS)
    headers = _with_standard_headers(response.raw_headers, uuid.uuid4().hex, api=True)
    return headers, bytes(response.body)


async def _send_error(send: Send, error: TaskHubError) -> None:
    """A TaskHubError sent from outside the app, as its handler renders it."""
    await _send_problem(send, error.status, error.detail, headers=error.headers, **error.extra())


async def _send_problem(send: Send, status: int, detail: str | None, **extra: Any) -> None:
    """The same problem document the app's handlers render, sent from outside the app."""
    response = problem_response(status, detail, **extra)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with a refused preflight rendered as a problem document."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        cors_headers = {
            name: value
            for name, value in response.headers.items()
            if name.startswith("access-control-") or name == "vary"
        }
        detail = bytes(response.body).decode()
        return problem_response(response.status_code, detail, headers=cors_headers)
