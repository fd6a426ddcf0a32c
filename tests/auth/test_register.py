"""POST /auth/register: the User body, username rules and every password rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.helpers import API, DEFAULT_PASSWORD, assert_problem, login, register

REGISTER = f"{API}/auth/register"


def _error_messages(body: dict[str, Any]) -> str:
    return " ".join(error["msg"] for error in body["errors"])


def _error_fields(body: dict[str, Any]) -> list[str]:
    return [str(error["loc"][-1]) for error in body["errors"]]


class TestRegisterSuccess:
    async def test_register_returns_201_user_with_id_username_and_created_at_only(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await register(client, "alice")

        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"id", "username", "created_at"}
        assert body["username"] == "alice"
        assert body["created_at"].endswith("Z")
        assert datetime.fromisoformat(body["created_at"]).tzinfo is not None

    async def test_register_response_never_contains_the_password_or_its_hash(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await register(client, "alice")

        assert response.status_code == 201
        text = response.text.lower()
        assert DEFAULT_PASSWORD not in text
        assert "password" not in text
        assert "$2b$" not in text
        assert "hash" not in text

    async def test_register_issues_no_token(self, client: httpx.AsyncClient) -> None:
        response = await register(client, "alice")

        assert response.status_code == 201
        assert "token" not in response.text.lower()
        assert "set-cookie" not in response.headers
        assert "authorization" not in response.headers

    async def test_register_normalises_username_to_lower_case(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await register(client, "Alice.Smith-99")

        assert response.status_code == 201
        assert response.json()["username"] == "alice.smith-99"

    async def test_registered_user_can_log_in(self, client: httpx.AsyncClient) -> None:
        assert (await register(client, "alice")).status_code == 201

        assert (await login(client, "alice")).status_code == 200

    @pytest.mark.parametrize(
        "username",
        ["abc", "a" * 32, "a_b.c-d", "ALL_CAPS", "0123456789", "...", "_-_"],
    )
    async def test_register_accepts_every_allowed_username_shape(
        self, client: httpx.AsyncClient, username: str
    ) -> None:
        response = await register(client, username)

        assert response.status_code == 201, response.text
        assert response.json()["username"] == username.lower()


class TestRegisterConflict:
    async def test_register_same_username_twice_gives_409(self, client: httpx.AsyncClient) -> None:
        assert (await register(client, "alice")).status_code == 201

        assert_problem(await register(client, "alice"), 409)

    async def test_register_username_differing_only_in_case_gives_409(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await register(client, "Alice")).status_code == 201

        for variant in ("alice", "ALICE", "aLiCe"):
            body = assert_problem(await register(client, variant), 409)
            assert "taken" in body["detail"]

    async def test_conflict_does_not_replace_the_first_users_password(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await register(client, "alice")).status_code == 201
        assert_problem(await register(client, "ALICE", "other-secret-phrase-7"), 409)

        assert (await login(client, "alice")).status_code == 200
        assert_problem(await login(client, "alice", "other-secret-phrase-7"), 401)


class TestRegisterUsernameRules:
    @pytest.mark.parametrize(
        "username",
        [
            "",
            "ab",
            "a" * 33,
            "al ice",
            "alice!",
            "alice@example.com",
            "ålice",
            "alice\n",
            " alice",
            "al/ice",
            "al\x00ice",
        ],
    )
    async def test_register_with_username_outside_pattern_gives_422(
        self, client: httpx.AsyncClient, username: str
    ) -> None:
        body = assert_problem(await register(client, username), 422)

        assert "username" in _error_fields(body)

    @pytest.mark.parametrize("username", [None, 123, ["alice"], {"name": "alice"}])
    async def test_register_with_non_string_username_gives_422(
        self, client: httpx.AsyncClient, username: object
    ) -> None:
        response = await client.post(
            REGISTER, json={"username": username, "password": DEFAULT_PASSWORD}
        )

        assert_problem(response, 422)


class TestRegisterPasswordRules:
    async def test_register_with_password_shorter_than_minimum_gives_422(
        self, client: httpx.AsyncClient
    ) -> None:
        body = assert_problem(await register(client, "alice", "zq8-vk3"), 422)

        assert _error_fields(body) == ["password"]
        assert "at least 8" in _error_messages(body)

    async def test_register_with_password_of_exactly_minimum_length_is_accepted(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await register(client, "alice", "zq8-vk3w")).status_code == 201

    async def test_register_minimum_length_counts_characters_not_bytes(
        self, client: httpx.AsyncClient
    ) -> None:
        # 7 characters but 21 bytes: still too short.
        assert_problem(await register(client, "alice", "€" * 7), 422)
        assert (await register(client, "alice", "€" * 8)).status_code == 201

    async def test_register_with_password_over_72_utf8_bytes_gives_422_naming_the_limit(
        self, client: httpx.AsyncClient
    ) -> None:
        password = "€" * 25  # 25 characters, 75 bytes
        assert len(password) == 25
        assert len(password.encode()) == 75

        body = assert_problem(await register(client, "alice", password), 422)

        assert _error_fields(body) == ["password"]
        message = _error_messages(body)
        assert "72 bytes" in message
        assert "bcrypt" not in str(body).lower()
        assert password not in str(body)

    async def test_register_with_password_of_exactly_72_utf8_bytes_is_accepted(
        self, client: httpx.AsyncClient
    ) -> None:
        password = "€" * 24  # 72 bytes
        assert len(password.encode()) == 72

        assert (await register(client, "alice", password)).status_code == 201
        assert (await login(client, "alice", password)).status_code == 200

    async def test_register_with_73_ascii_byte_password_gives_422(
        self, client: httpx.AsyncClient
    ) -> None:
        body = assert_problem(await register(client, "alice", "k" * 40 + "z" * 33), 422)

        assert "72 bytes" in _error_messages(body)

    async def test_register_with_very_long_password_gives_422_naming_the_72_byte_limit(
        self, client: httpx.AsyncClient
    ) -> None:
        body = assert_problem(await register(client, "alice", "kz" * 1000), 422)

        assert "72 bytes" in _error_messages(body)

    @pytest.mark.parametrize("password", ["charlie99", "CHARLIE99", "Charlie99"])
    async def test_register_with_password_equal_to_username_ignoring_case_gives_422(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        body = assert_problem(await register(client, "Charlie99", password), 422)

        assert _error_fields(body) == ["password"]
        assert "username" in _error_messages(body)

    @pytest.mark.parametrize(
        "password", ["password1", "PASSWORD1", "Qwerty123", "qwerty123", "iloveyou", "Sunshine"]
    )
    async def test_register_with_common_password_ignoring_case_gives_422(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        body = assert_problem(await register(client, "alice", password), 422)

        assert _error_fields(body) == ["password"]
        assert "common" in _error_messages(body)

    async def test_register_with_nul_in_password_gives_422(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await register(client, "alice", "plum-kettle\x00orbit"), 422)

        assert "password" in _error_fields(body)

    async def test_register_error_never_echoes_the_password(
        self, client: httpx.AsyncClient
    ) -> None:
        for password in ("zq8", "plum-kettle\x00orbit-secret", "€" * 30):
            response = await register(client, "alice", password)
            assert response.status_code == 422
            assert password not in response.text
            assert "input" not in str(response.json()["errors"])


class TestRegisterMalformedBody:
    async def test_register_with_unknown_field_gives_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            REGISTER, json={"username": "alice", "password": DEFAULT_PASSWORD, "is_admin": True}
        )

        body = assert_problem(response, 422)
        assert "is_admin" in _error_fields(body)

    @pytest.mark.parametrize("field", ["id", "created_at", "password_hash"])
    async def test_register_with_server_owned_field_gives_422(
        self, client: httpx.AsyncClient, field: str
    ) -> None:
        payload = {"username": "alice", "password": DEFAULT_PASSWORD, field: "x"}

        assert_problem(await client.post(REGISTER, json=payload), 422)

    @pytest.mark.parametrize(
        "payload", [{}, {"username": "alice"}, {"password": DEFAULT_PASSWORD}, [], "alice"]
    )
    async def test_register_with_missing_fields_gives_422(
        self, client: httpx.AsyncClient, payload: object
    ) -> None:
        assert_problem(await client.post(REGISTER, json=payload), 422)

    async def test_register_with_malformed_json_gives_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            REGISTER, content=b'{"username": "alice",', headers={"content-type": "application/json"}
        )

        assert_problem(response, 400)

    async def test_register_with_form_body_gives_415(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            REGISTER, data={"username": "alice", "password": DEFAULT_PASSWORD}
        )

        assert_problem(response, 415)

    async def test_failed_registration_creates_no_account(self, client: httpx.AsyncClient) -> None:
        assert_problem(await register(client, "alice", "password1"), 422)

        assert (await register(client, "alice")).status_code == 201
