"""Every error is an RFC 9457 problem document, whoever raised it (FastAPI, Starlette or us)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskhub.auth.service import token_codec
from taskhub.config import Settings
from taskhub.logs import ConsoleFormatter
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem, make_user
from tests.tokens import issue_token

UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/nope"
SECRET_PASSWORD = "violet-harbour-secret-31"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """assert_problem, plus the `detail` every problem document of ours carries."""
    body = assert_problem(response, status)
    assert isinstance(body.get("detail"), str)
    assert body["detail"]
    return body


@pytest.fixture
async def boom_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app plus one route that fails the way a bug would."""
    application = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("boom secret")

    application.add_api_route("/boom", explode, methods=["GET"])
    yield application
    await application.state.database.dispose()


@pytest.fixture
async def unavailable_app(database_url: str) -> AsyncIterator[FastAPI]:
    # The pool waits DB_POOL_TIMEOUT for a connection before it gives up with a 503.
    application = create_app(
        make_settings(database_url, DATABASE_URL=UNREACHABLE_DATABASE, DB_POOL_TIMEOUT=0.5)
    )
    yield application
    await application.state.database.dispose()


def forged_access_token(settings: Settings, username: str = "alice") -> str:
    """A token the app would accept if the database confirmed its session."""
    token, _jti = issue_token(token_codec(settings), subject=username, session_id=uuid.uuid4())
    return token


class TestNotFoundAndMethod:
    async def test_unknown_path_is_404_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/no-such-thing")

        problem(response, 404)

    async def test_wrong_method_is_405_problem_with_allow_header(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get(f"{API}/auth/register")

        problem(response, 405)
        assert response.headers["allow"] == "POST"

    async def test_wrong_method_on_a_protected_collection_is_405_with_allow(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.put(f"{API}/tasks", json={})

        problem(response, 405)
        assert {method.strip() for method in response.headers["allow"].split(",")} == {
            "GET",
            "POST",
        }

    @pytest.mark.parametrize("method", ["PATCH", "DELETE"])
    async def test_a_static_path_beside_an_id_path_is_405_not_a_malformed_id(
        self, client: httpx.AsyncClient, method: str
    ) -> None:
        # `/projects/roles` could be read as `/projects/{project_id}`, which takes PATCH and
        # DELETE: the contract's order says the method the path lacks wins (405, Allow: GET).
        response = await client.request(method, f"{API}/projects/roles")

        problem(response, 405)
        assert response.headers["allow"] == "GET"

    async def test_a_malformed_id_is_still_422(self, client: httpx.AsyncClient) -> None:
        user = await make_user(client, "malformed-id")

        response = await client.patch(f"{API}/projects/not-an-id", json={}, headers=user.headers)

        problem(response, 422)


class TestMalformedJson:
    @pytest.mark.parametrize(
        "path",
        [f"{API}/auth/register", f"{API}/auth/login", f"{API}/auth/refresh"],
    )
    async def test_body_that_is_not_json_is_400_not_422(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.post(
            path, content=b'{"username": "alice", ', headers={"Content-Type": "application/json"}
        )

        body = problem(response, 400)
        assert "errors" not in body

    async def test_protected_route_body_that_is_not_json_is_400(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            f"{API}/tasks",
            content=b"{title: nope}",
            headers={**alice.headers, "Content-Type": "application/json"},
        )

        problem(response, 400)


class TestValidationErrors:
    async def test_422_lists_loc_msg_type_for_each_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/register",
            json={"username": "x", "password": SECRET_PASSWORD, "is_admin": True},
        )

        body = problem(response, 422)
        assert body["errors"]
        for error in body["errors"]:
            assert set(error) == {"loc", "msg", "type"}
            assert isinstance(error["loc"], list)
            assert isinstance(error["msg"], str)
            assert isinstance(error["type"], str)
        locs = {tuple(error["loc"]) for error in body["errors"]}
        assert ("body", "username") in locs
        assert ("body", "is_admin") in locs

    async def test_422_does_not_echo_the_input_values(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/register",
            json={"username": "x!", "password": SECRET_PASSWORD, "unexpected": SECRET_PASSWORD},
        )

        problem(response, 422)
        assert SECRET_PASSWORD not in response.text
        assert "x!" not in response.text

    async def test_422_for_a_body_that_is_not_an_object(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{API}/auth/register", json=[SECRET_PASSWORD])

        problem(response, 422)
        assert SECRET_PASSWORD not in response.text


class TestUnsupportedMediaType:
    async def test_text_plain_body_on_a_json_endpoint_is_415(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{API}/auth/register",
            content=b'{"username": "alice", "password": "plum-kettle-orbit-42"}',
            headers={"Content-Type": "text/plain"},
        )

        problem(response, 415)

    async def test_multipart_body_on_a_json_endpoint_is_415(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            f"{API}/tasks", files={"title": ("title.txt", b"a task")}, headers=alice.headers
        )

        problem(response, 415)

    async def test_form_body_is_415_except_on_login(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/register", data={"username": "alice", "password": SECRET_PASSWORD}
        )

        problem(response, 415)

    async def test_multipart_login_is_415(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/login",
            data={"username": "alice", "password": SECRET_PASSWORD},
            files={"ignored": ("a.txt", b"x")},
        )

        problem(response, 415)


class TestUnexpectedException:
    async def test_is_a_bare_500_problem_naming_the_request_id(self, boom_app: FastAPI) -> None:
        async with client_of(boom_app) as http:
            response = await http.get("/boom")

        body = problem(response, 500)
        assert body["request_id"] == response.headers["x-request-id"]
        assert "boom" not in response.text
        assert "secret" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text

    async def test_keeps_the_clients_request_id(self, boom_app: FastAPI) -> None:
        async with client_of(boom_app) as http:
            response = await http.get("/boom", headers={"X-Request-ID": "trace-me:42"})

        assert problem(response, 500)["request_id"] == "trace-me:42"
        assert response.headers["x-request-id"] == "trace-me:42"

    async def test_server_log_has_the_traceback_and_the_request_id(
        self, boom_app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        caplog.handler.setFormatter(ConsoleFormatter())  # the line an operator reads

        async with client_of(boom_app) as http:
            response = await http.get("/boom")

        request_id = response.headers["x-request-id"]
        [record] = [r for r in caplog.records if r.exc_info is not None]
        assert record.levelno == logging.ERROR
        assert "Traceback" in caplog.text
        assert "RuntimeError: boom secret" in caplog.text
        assert f"[{request_id}]" in caplog.text


class TestDatabaseUnavailable:
    @pytest.mark.parametrize(
        ("method", "path", "payload"),
        [
            ("GET", f"{API}/users/me", None),
            ("GET", f"{API}/tasks", None),
            ("POST", f"{API}/tasks", {"title": "a task"}),
            ("DELETE", f"{API}/users/me", None),
        ],
    )
    async def test_protected_request_with_a_valid_token_is_503_not_500(
        self,
        unavailable_app: FastAPI,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
    ) -> None:
        token = forged_access_token(unavailable_app.state.settings)

        async with client_of(unavailable_app) as http:
            response = await http.request(
                method, path, json=payload, headers={"Authorization": f"Bearer {token}"}
            )

        problem(response, 503)
        assert response.headers["retry-after"].isdigit()
        assert "127.0.0.1" not in response.text
        assert "nope" not in response.text
        assert "postgres" not in response.text.lower()

    async def test_login_is_503_not_500(self, unavailable_app: FastAPI) -> None:
        async with client_of(unavailable_app) as http:
            response = await http.post(
                f"{API}/auth/login", data={"username": "alice", "password": SECRET_PASSWORD}
            )

        problem(response, 503)

    async def test_a_bad_token_is_still_401_without_touching_the_database(
        self, unavailable_app: FastAPI
    ) -> None:
        async with client_of(unavailable_app) as http:
            response = await http.get(
                f"{API}/users/me", headers={"Authorization": "Bearer not-a-jwt"}
            )

        problem(response, 401)


class TestBodyTooLarge:
    @pytest.fixture
    async def small_limit_app(self, database_url: str) -> AsyncIterator[FastAPI]:
        application = create_app(make_settings(database_url, MAX_BODY_BYTES=1024))
        yield application
        await application.state.database.dispose()

    @staticmethod
    def body_of(size: int) -> bytes:
        prefix, suffix = b'{"username": "alice", "password": "', b'"}'
        return prefix + b"p" * (size - len(prefix) - len(suffix)) + suffix

    async def test_declared_length_over_the_limit_is_413(self, small_limit_app: FastAPI) -> None:
        async with client_of(small_limit_app) as http:
            response = await http.post(
                f"{API}/auth/register",
                content=self.body_of(1025),
                headers={"Content-Type": "application/json"},
            )

        problem(response, 413)
        assert "x-request-id" in response.headers

    async def test_body_at_the_limit_is_read(self, small_limit_app: FastAPI) -> None:
        async with client_of(small_limit_app) as http:
            response = await http.post(
                f"{API}/auth/register",
                content=self.body_of(1024),
                headers={"Content-Type": "application/json"},
            )

        problem(response, 422)  # read and validated: the password is too long

    async def test_streamed_body_without_length_over_the_limit_is_413(
        self, small_limit_app: FastAPI
    ) -> None:
        body = self.body_of(4096)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 512):
                yield body[start : start + 512]

        async with client_of(small_limit_app) as http:
            response = await http.post(
                f"{API}/auth/register",
                content=chunks(),
                headers={"Content-Type": "application/json"},
            )

        assert "content-length" not in response.request.headers
        problem(response, 413)

    async def test_login_form_over_the_limit_is_413(self, small_limit_app: FastAPI) -> None:
        async with client_of(small_limit_app) as http:
            response = await http.post(
                f"{API}/auth/login", data={"username": "alice", "password": "p" * 2000}
            )

        problem(response, 413)

    async def test_default_limit_is_64_kib(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{API}/auth/register",
            content=self.body_of(65_537),
            headers={"Content-Type": "application/json"},
        )

        problem(response, 413)
