"""/health (liveness, no dependencies) and /ready (the database answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import assert_problem

UNREACHABLE_DATABASE = "postgresql://postgres:hunter2@127.0.0.1:1/nope"


@pytest.fixture
async def unavailable_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(
        make_settings(database_url, DATABASE_URL=UNREACHABLE_DATABASE)
    )
    async with client_of(application) as http:
        yield http
    await application.state.database.dispose()


class TestHealth:
    async def test_is_ok_without_dependencies(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"status": "ok"}

    async def test_is_ok_while_the_database_is_down(
        self, unavailable_client: httpx.AsyncClient
    ) -> None:
        response = await unavailable_client.get("/health")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_needs_no_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={"Authorization": "Bearer garbage"})

        assert response.status_code == 200


class TestReady:
    async def test_is_200_when_the_database_answers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ready")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["database"] == "ok"

    async def test_is_503_problem_naming_the_database_when_it_does_not_answer(
        self, unavailable_client: httpx.AsyncClient
    ) -> None:
        response = await unavailable_client.get("/ready")

        body = assert_problem(response, 503)
        assert "database" in body["detail"]
        assert body["checks"] == {"database": "unavailable"}
        assert response.headers["retry-after"].isdigit()

    async def test_503_body_holds_no_connection_string(
        self, unavailable_client: httpx.AsyncClient
    ) -> None:
        response = await unavailable_client.get("/ready")

        assert response.status_code == 503
        text = response.text.lower()
        for fragment in ("postgres", "psycopg", "hunter2", "127.0.0.1", ":1/", "nope"):
            assert fragment not in text


class TestReadyWithRedis:
    @pytest.fixture
    async def redis_down_client(self, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(
            make_settings(database_url, REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
        )
        async with client_of(application) as http:
            yield http
        await application.state.database.dispose()

    async def test_redis_is_not_checked_when_not_configured(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/ready")

        assert response.json()["checks"] == {"database": "ok"}

    async def test_is_503_naming_redis_when_configured_and_down(
        self, redis_down_client: httpx.AsyncClient
    ) -> None:
        response = await redis_down_client.get("/ready")

        body = assert_problem(response, 503)
        assert body["detail"] == "unavailable: redis"
        assert body["checks"] == {"database": "ok", "redis": "unavailable"}
        assert "hunter2" not in response.text
        assert "redis://" not in response.text
