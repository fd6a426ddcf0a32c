"""Headers every response carries: X-Request-ID, nosniff, and nothing naming the server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from taskhub.config import Settings
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
