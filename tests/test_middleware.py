"""Headers every response carries: X-Request-ID, nosniff, and nothing naming the server; and
bodies read whole, within REQUEST_READ_TIMEOUT, before a request takes an admission place."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from taskhub.config import Settings
from taskhub.http.middleware import READ_DEADLINE, RequestContextMiddleware
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
async def boom_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("boom")

    application.add_api_route("/boom", explode, methods=["GET"])
    async with client_of(application) as http:
        yield http
    await application.state.database.dispose()


def assert_standard_headers(response: httpx.Response) -> None:
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers
    for name, value in response.headers.items():
        assert not re.search(r"uvicorn|starlette|fastapi|python/?\d", value, re.IGNORECASE), name


class TestRequestId:
    @pytest.mark.parametrize(
        "request_id",
        [
            "a",
            "abc-123_DEF.456:789",
            "0" * 128,
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        ],
    )
    async def test_valid_client_id_is_echoed(
        self, client: httpx.AsyncClient, request_id: str
    ) -> None:
        response = await client.get("/health", headers={"X-Request-ID": request_id})

        assert response.headers["x-request-id"] == request_id

    @pytest.mark.parametrize(
        "request_id",
        [
            pytest.param("0" * 129, id="too-long"),
            pytest.param("has space", id="space"),
            pytest.param("semi;colon", id="semicolon"),
            pytest.param("slash/path", id="slash"),
            pytest.param("<script>", id="markup"),
            pytest.param("", id="empty"),
        ],
    )
    async def test_invalid_client_id_is_replaced_by_a_generated_one(
        self, client: httpx.AsyncClient, request_id: str
    ) -> None:
        response = await client.get("/health", headers={"X-Request-ID": request_id})

        generated = response.headers["x-request-id"]
        assert generated != request_id
        assert GENERATED_ID.fullmatch(generated)

    async def test_non_ascii_client_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={b"X-Request-ID": "caf\u00e9".encode()})

        assert GENERATED_ID.fullmatch(response.headers["x-request-id"])

    async def test_without_a_client_id_each_request_gets_its_own(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await client.get("/health")
        second = await client.get("/health")

        assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    async def test_the_response_carries_one_request_id(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={"X-Request-ID": "only-once"})

        assert response.headers.get_list("x-request-id") == ["only-once"]


class TestStandardHeaders:
    async def test_on_200(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        response = await client.get(f"{API}/users/me", headers=alice.headers)

        assert response.status_code == 200
        assert_standard_headers(response)

    async def test_on_201_and_204(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        created = await client.post(f"{API}/tasks", json={"title": "t"}, headers=alice.headers)
        deleted = await client.delete(f"{API}/tasks/{created.json()['id']}", headers=alice.headers)

        assert (created.status_code, deleted.status_code) == (201, 204)
        assert_standard_headers(created)
        assert_standard_headers(deleted)

    async def test_on_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{API}/users/me")

        assert response.status_code == 401
        assert_standard_headers(response)

    async def test_on_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/nowhere")

        assert response.status_code == 404
        assert_standard_headers(response)

    async def test_on_415(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/register", content=b"x", headers={"Content-Type": "text/plain"}
        )

        assert response.status_code == 415
        assert_standard_headers(response)

    async def test_on_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{API}/auth/register", json={})

        assert response.status_code == 422
        assert_standard_headers(response)

    async def test_on_500(self, boom_client: httpx.AsyncClient) -> None:
        response = await boom_client.get("/boom", headers={"X-Request-ID": "req-500"})

        assert response.status_code == 500
        assert_standard_headers(response)
        assert response.headers["x-request-id"] == "req-500"

    async def test_on_openapi_document(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/openapi.json")

        assert response.status_code == 200
        assert_standard_headers(response)


class TestCors:
    ORIGIN = "https://app.example"

    @pytest.fixture
    async def cors_client(self, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(
            make_settings(database_url, CORS_ORIGINS=f" {self.ORIGIN} , https://other.example")
        )
        async with client_of(application) as http:
            yield http
        await application.state.database.dispose()

    def preflight_headers(self, origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }

    async def test_no_cross_origin_access_by_default(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={"Origin": self.ORIGIN})

        assert "access-control-allow-origin" not in response.headers

    async def test_preflight_from_a_configured_origin_is_allowed_without_credentials(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.options(
            f"{API}/tasks", headers=self.preflight_headers(self.ORIGIN)
        )

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == self.ORIGIN
        assert "access-control-allow-credentials" not in response.headers
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        assert_standard_headers(response)

    async def test_preflight_from_another_origin_is_refused(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.options(
            f"{API}/tasks", headers=self.preflight_headers("https://evil.example")
        )

        assert_problem(response, 400)
        assert "origin" in response.json()["detail"]
        assert "access-control-allow-origin" not in response.headers
        assert_standard_headers(response)

    async def test_actual_response_exposes_the_request_id(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.get("/health", headers={"Origin": self.ORIGIN})

        assert response.headers["access-control-allow-origin"] == self.ORIGIN
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


class SlowBody:
    """A request body whose first byte comes at once and whose rest waits for `finish`."""

    def __init__(self, first: bytes = b"{", rest: bytes = b"}") -> None:
        self.first, self.rest = first, rest
        self.finish = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        # Bounded, so a broken middleware fails the test instead of hanging it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finish.wait(), timeout=10)
        yield self.rest


@pytest.fixture
async def slow_body_app(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One admission place, a short queue and a short read timeout."""
    settings = make_settings(
        database_url,
        MAX_CONCURRENT_REQUESTS=1,
        REQUEST_QUEUE_TIMEOUT=0.2,
        REQUEST_READ_TIMEOUT=1.0,
    )
    application: FastAPI = create_app(settings)
    async with client_of(application) as http:
        yield http
    await application.state.database.dispose()


def _post_slowly(http: httpx.AsyncClient, body: SlowBody) -> Awaitable[httpx.Response]:
    return http.post(
        f"{API}/auth/login",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": "2"},
    )


class TestSlowBodies:
    async def test_a_body_not_arrived_within_the_read_timeout_is_408_and_the_connection_closes(
        self, slow_body_app: httpx.AsyncClient
    ) -> None:
        response = await _post_slowly(slow_body_app, SlowBody())

        body = assert_problem(response, 408)
        assert body["detail"] == "The request did not arrive in time"
        assert response.headers["connection"] == "close"
        assert_standard_headers(response)

    async def test_a_request_whose_body_is_arriving_holds_no_admission_place(
        self, slow_body_app: httpx.AsyncClient
    ) -> None:
        body = SlowBody()
        slow = asyncio.create_task(_post_slowly(slow_body_app, body))
        await asyncio.sleep(0.05)  # its headers are in, its body is not

        other = await slow_body_app.get(f"{API}/users/me")
        body.finish.set()

        assert other.status_code == 401  # admitted at once: it reached the auth check
        assert (await slow).status_code == 422  # once whole, the slow one is served too

    async def test_the_read_deadline_is_the_one_the_server_gives(self) -> None:
        """The server's protocol counts from the request's first byte: the body gets what is
        left of REQUEST_READ_TIMEOUT after the headers, not the whole of it again."""
        deadline = asyncio.get_running_loop().time() + 0.05
        scope = _http_scope(extensions={READ_DEADLINE: {"deadline": deadline}})
        sent: list[Message] = []

        # Answered by the server's deadline, not READ_TIMEOUT's 30 s: a loose bound of seconds.
        await asyncio.wait_for(
            _not_called_middleware(read_timeout=30)(scope, _never_done(), _into(sent)), timeout=5
        )

        assert sent[0]["status"] == 408

    async def test_a_client_gone_before_its_body_is_not_answered(self) -> None:
        outcomes: list[int] = []
        sent: list[Message] = []

        async def disconnect() -> Message:
            return {"type": "http.disconnect"}

        def record(_scope: Scope, _context: object, status: int, *_rest: object) -> None:
            outcomes.append(status)

        middleware = _not_called_middleware(read_timeout=30, record_outcome=record)
        await middleware(_http_scope(), disconnect, _into(sent))

        assert sent == []
        assert outcomes == [499]


def _http_scope(**extra: object) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": f"{API}/auth/login",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        **extra,
    }


def _not_called_middleware(**options: Any) -> RequestContextMiddleware:
    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise AssertionError("the app was called before the body arrived")

    return RequestContextMiddleware(app, api_prefix=API, **options)


def _never_done() -> Receive:
    async def receive() -> Message:
        await asyncio.sleep(10)
        raise AssertionError("the read deadline did not end the wait")

    return receive


def _into(sent: list[Message]) -> Send:
    async def send(message: Message) -> None:
        sent.append(message)

    return send
