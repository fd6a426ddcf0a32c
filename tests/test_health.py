"""/health (liveness, no dependencies) and /ready (the database answers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from taskhub.http.health import READY_CACHE_SECONDS, Readiness
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import assert_problem
from tests.private_servers import PrivateRedis

UNREACHABLE_DATABASE = "postgresql://postgres:hunter2@127.0.0.1:1/nope"
FLOOD = 50


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


class TestReadyUnderAFlood:
    """A flood of /ready costs a process one check a second, on the connections it already has."""

    @pytest.fixture
    async def fresh(self, database_url: str, redis_server: PrivateRedis) -> AsyncIterator[FastAPI]:
        application = create_app(make_settings(database_url, REDIS_URL=redis_server.url))
        yield application
        await application.state.rate_limiter.aclose()
        await application.state.database.dispose()

    @staticmethod
    async def flood(application: FastAPI) -> list[int]:
        async with client_of(application) as http:
            responses = await asyncio.gather(*(http.get("/ready") for _ in range(FLOOD)))
        return [response.status_code for response in responses]

    async def test_concurrent_calls_share_one_database_check(self, fresh: FastAPI) -> None:
        with fresh.state.database.observed() as sent:
            statuses = await self.flood(fresh)

        assert statuses == [200] * FLOOD
        assert len(sent) == 1, sent

    async def test_a_check_is_kept_for_its_time_then_made_again(self) -> None:
        made: list[float] = []

        async def check() -> dict[str, bool]:
            made.append(time.monotonic())
            return {"database": True}

        kept = Readiness(ttl=30.0)
        for _ in range(3):
            assert await kept.checks(check) == {"database": True}
        assert len(made) == 1

        short = Readiness(ttl=0.1)
        await short.checks(check)
        await asyncio.sleep(0.2)
        await short.checks(check)
        assert len(made) == 3

    async def test_redis_is_checked_on_the_app_s_own_connection(
        self, fresh: FastAPI, redis_server: PrivateRedis
    ) -> None:
        before = redis_server.connections_received()
        for _ in range(3):
            assert await self.flood(fresh) == [200] * FLOOD
            await asyncio.sleep(READY_CACHE_SECONDS)
        # Minus the connection that asks: the server counts it too.
        opened = redis_server.connections_received() - before - 1

        assert opened <= 1, f"{opened} connections for 3 checks"
