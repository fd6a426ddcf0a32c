"""/metrics (Prometheus text format) and the access log line every request writes.

Each test gets a fresh app, so its registry starts at zero and every count can be exact.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from taskhub.auth.service import token_codec
from taskhub.config import Settings
from taskhub.logs import ConsoleFormatter, JsonFormatter
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem, create_task, login, make_user
from tests.tokens import claims_of, forge_token, issue_token, sign_token

Labels = frozenset[tuple[str, str]]
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
TASK_ROUTE = f"{API}/tasks/{{task_id}}"


def make_app(database_url: str, **overrides: object) -> FastAPI:
    return create_app(make_settings(database_url, **overrides))


@pytest.fixture
async def fresh_app(database_url: str, app: FastAPI) -> AsyncIterator[FastAPI]:
    # `app`: its teardown empties the tables this app shares with it.
    application = make_app(database_url, RATE_LIMIT_LOGIN="2/minute")
    yield application
    await application.state.database.dispose()


@pytest.fixture
async def http(fresh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(fresh_app) as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, Labels], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def parse(text: str) -> dict[tuple[str, Labels], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def requests_of(
    samples: dict[tuple[str, Labels], float], method: str, route: str, status: int
) -> float | None:
    return value(
        samples, "taskhub_http_requests_total", method=method, route=route, status=str(status)
    )


class TestScrape:
    async def test_metrics_are_prometheus_text_and_need_no_token(
        self, http: httpx.AsyncClient
    ) -> None:
        response = await http.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert "# TYPE taskhub_http_requests_total counter" in response.text
        assert "# TYPE taskhub_http_request_duration_seconds histogram" in response.text

    async def test_requests_are_counted_by_route_template_and_status(
        self, http: httpx.AsyncClient
    ) -> None:
        alice = await make_user(http, "alice")
        task = await create_task(http, alice)
        for _ in range(2):
            assert (await http.get(f"{API}/tasks/{task['id']}", headers=alice.headers)).is_success
        missing = await http.get(f"{API}/tasks/{uuid.uuid4()}", headers=alice.headers)
        assert missing.status_code == 404
        assert (await http.get("/no/such/path")).status_code == 404
        assert (await http.put(f"{API}/tasks")).status_code == 405

        samples = await scrape(http)

        assert requests_of(samples, "GET", TASK_ROUTE, 200) == 2
        assert requests_of(samples, "GET", TASK_ROUTE, 404) == 1
        assert requests_of(samples, "POST", f"{API}/tasks", 201) == 1
        assert requests_of(samples, "POST", f"{API}/auth/register", 201) == 1
        assert requests_of(samples, "POST", f"{API}/auth/login", 200) == 1
        assert requests_of(samples, "GET", "unmatched", 404) == 1
        assert requests_of(samples, "PUT", f"{API}/tasks", 405) == 1

    async def test_latency_is_a_histogram_by_route_template_and_status(
        self, http: httpx.AsyncClient
    ) -> None:
        alice = await make_user(http, "alice")
        task = await create_task(http, alice)
        for _ in range(3):
            await http.get(f"{API}/tasks/{task['id']}", headers=alice.headers)

        samples = await scrape(http)

        labels = {"method": "GET", "route": TASK_ROUTE, "status": "200"}
        name = "taskhub_http_request_duration_seconds"
        assert value(samples, f"{name}_count", **labels) == 3
        total = value(samples, f"{name}_sum", **labels)
        assert total is not None
        assert total > 0
        assert value(samples, f"{name}_bucket", **labels, le="+Inf") == 3
        buckets = [
            key for key in samples if key[0] == f"{name}_bucket" and labels.items() <= key[1]
        ]
        assert len(buckets) > 5

    async def test_no_label_holds_an_id_a_username_or_a_token(
        self, http: httpx.AsyncClient
    ) -> None:
        alice = await make_user(http, "alice-labels")
        task = await create_task(http, alice)
        await http.get(f"{API}/tasks/{task['id']}", headers=alice.headers)
        await http.get(f"{API}/tasks/{task['id'].upper()}?q=secret-query", headers=alice.headers)
        await http.get(f"{API}/tasks/not-a-uuid", headers=alice.headers)
        await http.get(f"/no/such/{uuid.uuid4()}")

        response = await http.get("/metrics")

        for needle in (task["id"], task["id"].upper(), alice.id, alice.username, "secret-query"):
            assert needle not in response.text
        assert alice.access_token not in response.text
        samples = parse(response.text)
        routes = {dict(labels)["route"] for _, labels in samples if "route" in dict(labels)}
        assert routes
        for route in routes:
            assert route == "unmatched" or route.startswith("/"), route
            assert not UUID_PATTERN.search(route), route
            assert "not-a-uuid" not in route
        for _, labels in samples:
            for label_value in dict(labels).values():
                assert not UUID_PATTERN.search(label_value), labels

    async def test_db_pool_checked_out_connections_are_read_at_scrape_time(
        self, http: httpx.AsyncClient, fresh_app: FastAPI
    ) -> None:
        database = fresh_app.state.database
        await database.scalar(sa.select(sa.literal(1)), {})
        for _ in range(100):  # the pool settles: every connection it opened is back and idle
            stats = database.pool_stats()
            if stats is None or stats.in_use == 0:
                break
            await asyncio.sleep(0.02)
        async with database.transaction():
            during = await scrape(http)
        after = await scrape(http)

        assert value(during, "taskhub_db_pool_checked_out_connections") == 1
        assert value(after, "taskhub_db_pool_checked_out_connections") == 0
        size = value(after, "taskhub_db_pool_size")
        assert size is not None
        assert size >= 1

    async def test_a_response_refused_before_routing_is_counted(
        self, http: httpx.AsyncClient
    ) -> None:
        # The 413 comes from the request-context middleware: metrics sit outside it.
        response = await http.post(
            f"{API}/tasks",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": "10000000"},
        )
        assert response.status_code == 413

        assert requests_of(await scrape(http), "POST", "unmatched", 413) == 1

    async def test_each_app_has_its_own_registry(
        self, http: httpx.AsyncClient, database_url: str
    ) -> None:
        await http.get("/health")
        other = make_app(database_url)
        try:
            async with client_of(other) as other_client:
                other_samples = await scrape(other_client)
        finally:
            await other.state.database.dispose()

        assert requests_of(await scrape(http), "GET", "/health", 200) == 1
        assert requests_of(other_samples, "GET", "/health", 200) is None


class TestAuthFailures:
    async def test_refused_authentication_is_counted_by_reason(
        self, http: httpx.AsyncClient, fresh_app: FastAPI
    ) -> None:
        settings: Settings = fresh_app.state.settings
        alice = await make_user(http, "alice")
        bob = await make_user(http, "bob")
        now = int(time.time())

        async def me(header: str | None) -> None:
            headers = {"Authorization": header} if header is not None else {}
            response = await http.get(f"{API}/users/me", headers=headers)
            assert_problem(response, 401)

        await me(None)  # missing
        await me("Basic YWxpY2U6eA==")  # missing: no bearer token at all
        await me("Bearer ")  # malformed
        await me("Bearer not-a-jwt")  # malformed
        await me(f"Bearer {forge_token(settings, alice.access_token, iat=now - 99, exp=now - 9)}")
        await me(f"Bearer {forge_token(settings, alice.access_token, key='x' * 48)}")
        await me(f"Bearer {alice.refresh_token}")  # wrong_type
        await me(f"Bearer {forge_token(settings, alice.access_token, iss='someone-else')}")
        unknown_kid = sign_token(claims_of(alice.access_token), "y" * 48)  # names its own key
        await me(f"Bearer {unknown_kid}")
        assert (await http.post(f"{API}/auth/logout", headers=bob.headers)).status_code == 204
        await me(f"Bearer {bob.access_token}")  # session_inactive
        refused = await http.post(f"{API}/auth/refresh", json={"refresh_token": "garbage"})
        assert_problem(refused, 401)
        for _ in range(2):  # RATE_LIMIT_LOGIN=2/minute: two wrong passwords, then 429
            assert_problem(await login(http, "alice", "wrong-password-1"), 401)
        assert_problem(await login(http, "alice", "wrong-password-1"), 429)

        samples = await scrape(http)
        counts = {
            dict(labels)["reason"]: count
            for (name, labels), count in samples.items()
            if name == "taskhub_auth_failures_total"
        }

        assert counts == {
            "missing": 2,
            "malformed": 2,
            "expired": 1,
            "bad_signature": 1,
            "wrong_type": 1,
            "invalid_claims": 1,
            "unknown_key": 1,
            "session_inactive": 1,
            "invalid_refresh_token": 1,
            "bad_credentials": 2,
            "rate_limited": 1,
        }

    async def test_successful_requests_count_no_failure(self, http: httpx.AsyncClient) -> None:
        alice = await make_user(http, "alice")
        assert (await http.get(f"{API}/users/me", headers=alice.headers)).status_code == 200

        samples = await scrape(http)

        assert not [key for key in samples if key[0] == "taskhub_auth_failures_total"]


class TestConfiguration:
    async def test_metrics_disabled_gives_404_and_requests_still_work(
        self, database_url: str, app: FastAPI
    ) -> None:
        disabled = make_app(database_url, METRICS_ENABLED=False)
        try:
            async with client_of(disabled) as client:
                assert_problem(await client.get("/metrics"), 404)
                assert (await client.get("/health")).status_code == 200
        finally:
            await disabled.state.database.dispose()

    async def test_a_metrics_port_takes_metrics_off_the_main_app(
        self, database_url: str, app: FastAPI
    ) -> None:
        # The separate listener starts with the app's lifespan (tested in tests/integration).
        separate = make_app(database_url, METRICS_PORT=9464)
        try:
            async with client_of(separate) as client:
                assert_problem(await client.get("/metrics"), 404)
        finally:
            await separate.state.database.dispose()

    def test_metrics_port_must_differ_from_port(self, database_url: str) -> None:
        with pytest.raises(ValueError, match="METRICS_PORT"):
            make_settings(database_url, PORT=8000, METRICS_PORT=8000)

    def test_metrics_port_needs_a_single_worker(self, database_url: str) -> None:
        with pytest.raises(ValueError, match="WEB_CONCURRENCY=1"):
            make_settings(database_url, WEB_CONCURRENCY=2, METRICS_PORT=9464)

    def test_defaults(self, database_url: str) -> None:
        settings = make_settings(database_url)

        assert (settings.METRICS_ENABLED, settings.METRICS_PORT) == (True, 0)


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The access log records so far, rendered by the production JSON formatter."""
    caplog.set_level(logging.DEBUG, logger="taskhub.access")
    formatter = JsonFormatter()

    def lines() -> list[dict[str, Any]]:
        return [
            orjson.loads(formatter.format(record))
            for record in caplog.records
            if record.name == "taskhub.access"
        ]

    return lines


class TestAccessLog:
    async def test_one_json_line_per_request_with_the_fields_and_no_secret(
        self,
        http: httpx.AsyncClient,
        access_lines: Callable[[], list[dict[str, Any]]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        alice = await make_user(http, "alice")
        task = await create_task(http, alice)
        caplog.clear()

        response = await http.get(f"{API}/tasks/{task['id']}", headers=alice.headers)

        [line] = access_lines()
        assert line["logger"] == "taskhub.access"
        assert line["level"] == "info"
        assert line["method"] == "GET"
        assert line["route"] == TASK_ROUTE
        assert line["status"] == 200
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["user_id"] == alice.id
        rendered = orjson.dumps(line).decode()
        assert alice.access_token not in rendered
        assert alice.access_token.rsplit(".", 1)[-1] not in rendered
        assert "Bearer" not in rendered
        assert task["id"] not in rendered  # the template, never the path

    async def test_login_line_has_no_password_and_no_user_id(
        self, http: httpx.AsyncClient, access_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        user = await make_user(http, "alice")
        response = await login(http, "alice", user.password)
        assert response.status_code == 200

        line = access_lines()[-1]

        assert line["route"] == f"{API}/auth/login"
        assert line["status"] == 200
        assert "user_id" not in line
        rendered = orjson.dumps(line).decode()
        assert user.password not in rendered
        assert response.json()["access_token"] not in rendered

    async def test_client_request_id_is_the_lines_request_id(
        self, http: httpx.AsyncClient, access_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        await http.get(f"/no/such/{uuid.uuid4()}", headers={"X-Request-ID": "trace-abc.123"})

        line = access_lines()[-1]

        assert line["request_id"] == "trace-abc.123"
        assert line["route"] == "unmatched"
        assert line["status"] == 404

    async def test_the_last_resort_500_is_logged_and_counted(
        self,
        fresh_app: FastAPI,
        http: httpx.AsyncClient,
        access_lines: Callable[[], list[dict[str, Any]]],
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("boom")

        fresh_app.add_api_route("/boom", explode, methods=["GET"])

        response = await http.get("/boom", headers={"X-Request-ID": "req-boom"})

        assert response.status_code == 500
        line = access_lines()[-1]
        assert (line["route"], line["status"], line["level"]) == ("/boom", 500, "info")
        assert line["request_id"] == "req-boom"
        assert requests_of(await scrape(http), "GET", "/boom", 500) == 1

    async def test_probe_lines_are_debug_others_info(
        self, http: httpx.AsyncClient, access_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        await http.get("/health")
        await http.get("/metrics")
        await http.get(f"{API}/users/me")

        levels = {line["route"]: line["level"] for line in access_lines()}

        assert levels == {"/health": "debug", "/metrics": "debug", f"{API}/users/me": "info"}

    async def test_console_format_writes_the_same_fields(
        self, console_app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="taskhub.access")
        async with client_of(console_app) as client:
            response = await client.get(f"{API}/users/me")

        [record] = [r for r in caplog.records if r.name == "taskhub.access"]
        formatted = ConsoleFormatter().format(record)
        assert f"[{response.headers['x-request-id']}]" in formatted
        for field in ("method=GET", f"route={API}/users/me", "status=401", "duration_ms="):
            assert field in formatted


@pytest.fixture
async def console_app(database_url: str, app: FastAPI) -> AsyncIterator[FastAPI]:
    # Built before the test runs: create_app configures logging, replacing caplog's handler.
    application = make_app(database_url, LOG_FORMAT="console")
    yield application
    await application.state.database.dispose()


class TestUserIdIsKnownOnlyAfterAuthentication:
    async def test_a_refused_token_logs_no_user_id(
        self,
        http: httpx.AsyncClient,
        fresh_app: FastAPI,
        access_lines: Callable[[], list[dict[str, Any]]],
    ) -> None:
        alice: ApiUser = await make_user(http, "alice")
        expired, _ = issue_token(
            token_codec(fresh_app.state.settings),
            session_id=uuid.UUID(claims_of(alice.access_token)["sid"]),
            issued_at=datetime.now(UTC) - timedelta(hours=1),
            lifetime=timedelta(minutes=59),
        )

        await http.get(f"{API}/users/me", headers={"Authorization": f"Bearer {expired}"})

        line = access_lines()[-1]
        assert line["status"] == 401
        assert "user_id" not in line
