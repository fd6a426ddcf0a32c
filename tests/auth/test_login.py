"""POST /auth/login: form and JSON bodies, identical failures, and the claims of the issued tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from taskhub.config import Settings
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, DEFAULT_PASSWORD, ApiUser, assert_problem, login, register
from tests.tokens import claims_of, header_of

LOGIN = f"{API}/auth/login"
TOKEN_CLAIMS = {"sub", "type", "sid", "jti", "iat", "exp", "iss", "aud"}


async def sessions_of(client: httpx.AsyncClient, access_token: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/users/me/sessions", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestLoginSuccess:
    async def test_login_with_form_body_returns_token_pair(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(LOGIN, data={"username": "alice", "password": alice.password})

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert body["access_token"] != body["refresh_token"]

    async def test_login_with_form_body_accepts_and_ignores_oauth2_fields(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            LOGIN,
            data={
                "grant_type": "password",
                "username": "alice",
                "password": alice.password,
                "scope": "tasks:read tasks:write",
                "client_id": "swagger",
                "client_secret": "not-checked",
            },
        )

        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "bearer"

    async def test_login_with_form_body_and_empty_oauth2_fields_works(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            LOGIN,
            content=f"grant_type=&username=alice&password={alice.password}&scope=&client_id=&client_secret=",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

        assert response.status_code == 200, response.text

    async def test_login_with_json_body_returns_token_pair(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(LOGIN, json={"username": "alice", "password": alice.password})

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        me = await client.get(
            f"{API}/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert me.status_code == 200

    async def test_login_with_form_charset_parameter_works(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            LOGIN,
            content=f"username=alice&password={alice.password}",
            headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        )

        assert response.status_code == 200, response.text

    @pytest.mark.parametrize("username", ["ALICE", "Alice", "aLiCe"])
    async def test_login_username_is_case_insensitive(
        self, client: httpx.AsyncClient, alice: ApiUser, username: str
    ) -> None:
        response = await login(client, username, alice.password)

        assert response.status_code == 200, response.text
        assert claims_of(response.json()["access_token"])["sub"] == "alice"

    async def test_login_with_multibyte_password_of_72_bytes_works(
        self, client: httpx.AsyncClient
    ) -> None:
        password = "ü" * 36  # 72 bytes
        assert (await register(client, "carol", password)).status_code == 201

        assert (await login(client, "carol", password)).status_code == 200

    async def test_each_login_starts_a_new_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        second = (await login(client, "alice")).json()

        first_sid = claims_of(alice.access_token)["sid"]
        second_sid = claims_of(second["access_token"])["sid"]
        assert first_sid != second_sid
        assert len(await sessions_of(client, alice.access_token)) == 2

    async def test_login_records_user_agent_on_the_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            LOGIN,
            data={"username": "alice", "password": alice.password},
            headers={"User-Agent": "TaskHubTest/1.0 (unit)"},
        )
        access = response.json()["access_token"]

        current = [s for s in await sessions_of(client, access) if s["current"]]
        assert [s["user_agent"] for s in current] == ["TaskHubTest/1.0 (unit)"]


class TestLoginFailures:
    async def test_login_with_wrong_password_gives_401_with_bearer_challenge(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await login(client, "alice", "wrong-password-123")

        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "access_token" not in body

    async def test_login_with_unknown_user_gives_same_401_as_wrong_password(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        wrong_password = await login(client, "alice", "wrong-password-123")
        unknown_user = await login(client, "nobody", "wrong-password-123")

        assert_problem(wrong_password, 401)
        assert_problem(unknown_user, 401)
        assert unknown_user.json() == wrong_password.json()
        assert (
            unknown_user.headers["www-authenticate"] == wrong_password.headers["www-authenticate"]
        )
        assert unknown_user.headers["content-type"] == wrong_password.headers["content-type"]

    async def test_login_with_unknown_user_in_json_gives_same_401_as_wrong_password(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        wrong_password = await client.post(LOGIN, json={"username": "alice", "password": "x"})
        unknown_user = await client.post(LOGIN, json={"username": "zed", "password": "x"})

        assert_problem(wrong_password, 401)
        assert unknown_user.json() == wrong_password.json()

    async def test_login_with_password_over_72_bytes_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        for password in ("€" * 25, "x" * 100, "y" * 5000):
            response = await login(client, "alice", password)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"

    async def test_login_is_not_fooled_by_bcrypt_truncation(
        self, client: httpx.AsyncClient
    ) -> None:
        password = "plum-kettle-orbit-" * 4  # exactly 72 bytes
        assert len(password.encode()) == 72
        assert (await register(client, "carol", password)).status_code == 201

        response = await login(client, "carol", password + "extra")

        assert_problem(response, 401)
        assert (await login(client, "carol", password)).status_code == 200

    async def test_login_for_unknown_user_with_over_long_password_gives_401(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(LOGIN, json={"username": "nobody", "password": "€" * 40})

        assert_problem(response, 401)

    async def test_login_with_over_long_username_gives_401(self, client: httpx.AsyncClient) -> None:
        response = await login(client, "a" * 300, "whatever-password")

        assert_problem(response, 401)

    @pytest.mark.parametrize(
        "content", [b"username=alice&password=%00abc", b"username=al%00ice&password=abc"]
    )
    async def test_login_with_nul_byte_in_form_gives_422(
        self, client: httpx.AsyncClient, alice: ApiUser, content: bytes
    ) -> None:
        response = await client.post(
            LOGIN, content=content, headers={"content-type": "application/x-www-form-urlencoded"}
        )

        assert_problem(response, 422)

    async def test_login_with_invalid_utf8_in_form_does_not_500(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            LOGIN,
            content=b"username=alice&password=%FF%FE%80",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

        assert_problem(response, 401)

    async def test_login_failure_creates_no_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert_problem(await login(client, "alice", "wrong-password-123"), 401)

        assert len(await sessions_of(client, alice.access_token)) == 1


class TestLoginMalformedRequests:
    async def test_login_with_malformed_json_gives_400_problem(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            LOGIN, content=b'{"username": "alice", ', headers={"content-type": "application/json"}
        )

        body = assert_problem(response, 400)
        assert "JSON" in body["detail"]

    async def test_login_with_empty_json_body_gives_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            LOGIN, content=b"", headers={"content-type": "application/json"}
        )

        assert_problem(response, 400)

    async def test_login_with_non_utf8_json_body_gives_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            LOGIN, content=b'{"username": "\xff"}', headers={"content-type": "application/json"}
        )

        assert_problem(response, 400)

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"username": "alice"},
            {"password": DEFAULT_PASSWORD},
            {"username": "", "password": "x"},
        ],
    )
    async def test_login_with_missing_fields_in_json_gives_422(
        self, client: httpx.AsyncClient, payload: dict[str, str]
    ) -> None:
        body = assert_problem(await client.post(LOGIN, json=payload), 422)

        assert body["errors"]

    @pytest.mark.parametrize(
        "form", [{}, {"username": "alice"}, {"password": DEFAULT_PASSWORD}, {"grant_type": "x"}]
    )
    async def test_login_with_missing_fields_in_form_gives_422(
        self, client: httpx.AsyncClient, form: dict[str, str]
    ) -> None:
        response = await client.post(
            LOGIN,
            content=httpx.QueryParams(form).__str__().encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

        assert_problem(response, 422)

    @pytest.mark.parametrize("payload", [b"[]", b'"alice"', b"42", b"null"])
    async def test_login_with_json_that_is_not_an_object_gives_422(
        self, client: httpx.AsyncClient, payload: bytes
    ) -> None:
        response = await client.post(
            LOGIN, content=payload, headers={"content-type": "application/json"}
        )

        assert_problem(response, 422)

    async def test_login_with_non_string_fields_gives_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(LOGIN, json={"username": ["alice"], "password": 12345678})

        assert_problem(response, 422)

    async def test_login_with_unknown_json_field_gives_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            LOGIN, json={"username": "alice", "password": "x", "admin": True}
        )

        assert_problem(response, 422)

    async def test_login_with_nul_in_json_gives_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(LOGIN, json={"username": "al\x00ice", "password": "x"})

        assert_problem(response, 422)

    async def test_login_with_unsupported_content_type_gives_415(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            LOGIN, content=b"username=alice", headers={"content-type": "text/plain"}
        )

        assert_problem(response, 415)

    async def test_login_with_too_many_form_fields_gives_4xx(
        self, client: httpx.AsyncClient
    ) -> None:
        content = "&".join(f"f{i}=v" for i in range(50)) + "&username=alice&password=x"
        response = await client.post(
            LOGIN, content=content, headers={"content-type": "application/x-www-form-urlencoded"}
        )

        assert 400 <= response.status_code < 500
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_malformed_login_error_never_echoes_the_password(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            LOGIN, json={"username": "alice", "password": "hunter2-secret", "x": 1}
        )

        assert response.status_code == 422
        assert "hunter2-secret" not in response.text


class TestIssuedTokenClaims:
    async def test_access_token_claims_are_complete_and_hs256(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        header = header_of(alice.access_token)
        claims = claims_of(alice.access_token)

        assert header["alg"] == "HS256"
        assert set(claims) == TOKEN_CLAIMS
        assert claims["sub"] == "alice"
        assert claims["type"] == "access"
        assert claims["iss"] == settings.JWT_ISSUER
        assert claims["aud"] == settings.JWT_AUDIENCE
        assert claims["exp"] == claims["iat"] + settings.ACCESS_TOKEN_TTL
        assert isinstance(claims["jti"], str)
        assert claims["jti"]

    async def test_refresh_token_claims_are_complete_and_hs256(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        header = header_of(alice.refresh_token)
        claims = claims_of(alice.refresh_token)

        assert header["alg"] == "HS256"
        assert set(claims) == TOKEN_CLAIMS
        assert claims["sub"] == "alice"
        assert claims["type"] == "refresh"
        assert claims["iss"] == settings.JWT_ISSUER
        assert claims["aud"] == settings.JWT_AUDIENCE
        assert claims["exp"] == claims["iat"] + settings.REFRESH_TOKEN_TTL

    async def test_tokens_verify_with_the_configured_secret(
        self, alice: ApiUser, settings: Settings
    ) -> None:
        for token in (alice.access_token, alice.refresh_token):
            jwt.decode(
                token,
                settings.JWT_SECRET.get_secret_value(),
                algorithms=["HS256"],
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
            )

    async def test_access_and_refresh_tokens_share_the_session_id_of_the_login(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        access = claims_of(alice.access_token)
        refresh = claims_of(alice.refresh_token)

        assert access["sid"] == refresh["sid"]
        assert access["jti"] != refresh["jti"]
        sessions = await sessions_of(client, alice.access_token)
        assert [s["id"] for s in sessions] == [access["sid"]]

    async def test_refresh_token_expires_at_the_session_end(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        refresh = claims_of(alice.refresh_token)
        (session,) = await sessions_of(client, alice.access_token)

        session_end = datetime.fromisoformat(session["expires_at"])
        assert refresh["exp"] == int(session_end.timestamp())

    async def test_every_login_gets_fresh_token_ids(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        again = (await login(client, "alice")).json()

        ids = {
            claims_of(token)["jti"]
            for token in (
                alice.access_token,
                alice.refresh_token,
                again["access_token"],
                again["refresh_token"],
            )
        }
        assert len(ids) == 4


@pytest.fixture
async def short_session_client(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app whose sessions end (300 s) before an access token would (600 s)."""
    # Depending on `app` makes the harness empty the tables after the test.
    other = create_app(make_settings(database_url, ACCESS_TOKEN_TTL=600, REFRESH_TOKEN_TTL=300))
    try:
        async with client_of(other) as http:
            yield http
    finally:
        await other.state.database.dispose()


async def test_access_token_never_outlives_its_session(
    short_session_client: httpx.AsyncClient,
) -> None:
    assert (await register(short_session_client, "dave")).status_code == 201

    body = (await login(short_session_client, "dave")).json()

    access = claims_of(body["access_token"])
    refresh = claims_of(body["refresh_token"])
    assert refresh["exp"] == refresh["iat"] + 300
    assert access["exp"] == refresh["exp"]
    assert body["expires_in"] == 300
