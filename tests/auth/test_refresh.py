"""POST /auth/refresh: rotation in the same session, single use, reuse revokes the session."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from taskhub.config import Settings
from tests.helpers import API, ApiUser, assert_problem, login
from tests.tokens import claims_of, forge_token, sign_token

REFRESH = f"{API}/auth/refresh"
ME = f"{API}/users/me"
INVALID_TOKEN = 'Bearer error="invalid_token"'


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


def assert_refresh_refused(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == INVALID_TOKEN


async def status_of_access(client: httpx.AsyncClient, access_token: str) -> int:
    response = await client.get(ME, headers={"Authorization": f"Bearer {access_token}"})
    return response.status_code


async def sessions(client: httpx.AsyncClient, access_token: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/users/me/sessions", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestRefreshRotation:
    async def test_refresh_returns_a_new_pair_in_the_same_session(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        response = await refresh(client, alice.refresh_token)

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == settings.ACCESS_TOKEN_TTL
        assert body["access_token"] != alice.access_token
        assert body["refresh_token"] != alice.refresh_token
        old_sid = claims_of(alice.refresh_token)["sid"]
        assert claims_of(body["access_token"])["sid"] == old_sid
        assert claims_of(body["refresh_token"])["sid"] == old_sid
        assert claims_of(body["access_token"])["type"] == "access"
        assert claims_of(body["refresh_token"])["type"] == "refresh"

    async def test_refreshed_access_token_works(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        body = (await refresh(client, alice.refresh_token)).json()

        assert await status_of_access(client, body["access_token"]) == 200

    async def test_refresh_keeps_the_previous_access_token_valid_until_its_exp(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await refresh(client, alice.refresh_token)).status_code == 200

        assert await status_of_access(client, alice.access_token) == 200

    async def test_refresh_does_not_extend_the_session_end(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        first = (await refresh(client, alice.refresh_token)).json()
        second = (await refresh(client, first["refresh_token"])).json()

        original_exp = claims_of(alice.refresh_token)["exp"]
        assert claims_of(first["refresh_token"])["exp"] == original_exp
        assert claims_of(second["refresh_token"])["exp"] == original_exp
        (session,) = await sessions(client, second["access_token"])
        assert (
            session["expires_at"] == (await sessions(client, alice.access_token))[0]["expires_at"]
        )

    async def test_refreshed_access_token_has_a_fresh_lifetime(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        body = (await refresh(client, alice.refresh_token)).json()

        claims = claims_of(body["access_token"])
        assert claims["exp"] == claims["iat"] + settings.ACCESS_TOKEN_TTL

    async def test_refresh_chain_keeps_working_token_after_token(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        token = alice.refresh_token
        for _ in range(3):
            response = await refresh(client, token)
            assert response.status_code == 200, response.text
            token = response.json()["refresh_token"]

        assert len(await sessions(client, alice.access_token)) == 1

    async def test_refresh_gives_fresh_token_ids(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        body = (await refresh(client, alice.refresh_token)).json()

        jtis = {claims_of(t)["jti"] for t in (alice.refresh_token, body["refresh_token"])}
        assert len(jtis) == 2


class TestRefreshReuse:
    async def test_spent_refresh_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await refresh(client, alice.refresh_token)).status_code == 200

        assert_refresh_refused(await refresh(client, alice.refresh_token))

    async def test_reusing_spent_refresh_token_revokes_the_whole_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        newest = (await refresh(client, alice.refresh_token)).json()

        assert_refresh_refused(await refresh(client, alice.refresh_token))

        assert await status_of_access(client, newest["access_token"]) == 401
        assert await status_of_access(client, alice.access_token) == 401
        assert_refresh_refused(await refresh(client, newest["refresh_token"]))

    async def test_reuse_revokes_only_that_session(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        assert (await refresh(client, alice.refresh_token)).status_code == 200

        assert_refresh_refused(await refresh(client, alice.refresh_token))

        assert await status_of_access(client, other["access_token"]) == 200
        assert (await refresh(client, other["refresh_token"])).status_code == 200
        assert await status_of_access(client, bob.access_token) == 200

    async def test_reuse_after_several_rotations_revokes_the_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        first = (await refresh(client, alice.refresh_token)).json()
        second = (await refresh(client, first["refresh_token"])).json()

        assert_refresh_refused(await refresh(client, first["refresh_token"]))

        assert await status_of_access(client, second["access_token"]) == 401
        assert_refresh_refused(await refresh(client, second["refresh_token"]))

    async def test_revoked_session_disappears_from_the_session_list(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        assert (await refresh(client, other["refresh_token"])).status_code == 200
        assert_refresh_refused(await refresh(client, other["refresh_token"]))

        listed = [s["id"] for s in await sessions(client, alice.access_token)]

        assert listed == [claims_of(alice.access_token)["sid"]]

    async def test_concurrent_refreshes_of_one_token_let_exactly_one_through(
        self, client: httpx.AsyncClient, alice: ApiUser, is_postgres: bool
    ) -> None:
        # On PostgreSQL the five requests run on separate pooled connections at once;
        # on SQLite they queue on the database's write lock. Either way one wins.
        responses = await asyncio.gather(*(refresh(client, alice.refresh_token) for _ in range(5)))

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 401, 401, 401, 401], [r.text for r in responses]
        for response in responses:
            if response.status_code == 401:
                assert_refresh_refused(response)
        # The losers count as reuse: the session is revoked, the winner's pair included.
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        assert await status_of_access(client, winner["access_token"]) == 401
        assert_refresh_refused(await refresh(client, winner["refresh_token"]))

    async def test_concurrent_refreshes_of_different_sessions_all_succeed(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        tokens = [alice.refresh_token]
        for _ in range(3):
            tokens.append((await login(client, "alice")).json()["refresh_token"])

        responses = await asyncio.gather(*(refresh(client, token) for token in tokens))

        assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]


class TestRefreshRejections:
    async def test_access_token_used_as_refresh_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert_refresh_refused(await refresh(client, alice.access_token))

        # Not treated as reuse: the session still works.
        assert await status_of_access(client, alice.access_token) == 200
        assert (await refresh(client, alice.refresh_token)).status_code == 200

    async def test_refresh_token_of_logged_out_session_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.post(f"{API}/auth/logout", headers=alice.headers)).status_code == 204

        assert_refresh_refused(await refresh(client, alice.refresh_token))

    async def test_refresh_token_of_deleted_user_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204

        assert_refresh_refused(await refresh(client, alice.refresh_token))

    async def test_refresh_token_signed_with_another_secret_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        # Naming no key, as a forger who knows none would.
        token = sign_token(
            claims_of(alice.refresh_token), "x" * 48, header={"alg": "HS256", "typ": "JWT"}
        )

        assert_refresh_refused(await refresh(client, token))

    async def test_refresh_token_never_issued_gives_401_without_revoking_the_session(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        token = forge_token(settings, alice.refresh_token, jti="made-up-token-id")

        assert_refresh_refused(await refresh(client, token))

        assert await status_of_access(client, alice.access_token) == 200

    async def test_expired_refresh_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        issued_at = claims_of(alice.refresh_token)["iat"]
        token = forge_token(settings, alice.refresh_token, exp=issued_at - 1)

        assert_refresh_refused(await refresh(client, token))

    @pytest.mark.parametrize(
        "token", ["", "garbage", "a.b.c", "é" * 10, "A" * 10_240, "Bearer x", "x." * 3000]
    )
    async def test_garbage_refresh_token_gives_401(
        self, client: httpx.AsyncClient, token: str
    ) -> None:
        assert_refresh_refused(await refresh(client, token))

    @pytest.mark.parametrize(
        "payload",
        [{}, {"refresh_token": None}, {"refresh_token": 42}, {"refresh_token": "x", "extra": 1}],
    )
    async def test_refresh_with_malformed_body_gives_422(
        self, client: httpx.AsyncClient, payload: dict[str, Any]
    ) -> None:
        assert_problem(await client.post(REFRESH, json=payload), 422)

    async def test_refresh_with_malformed_json_gives_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            REFRESH, content=b'{"refresh_token": ', headers={"content-type": "application/json"}
        )

        assert_problem(response, 400)

    async def test_refresh_with_form_body_gives_415(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(REFRESH, data={"refresh_token": alice.refresh_token})

        assert_problem(response, 415)


class TestRefreshTouchesSession:
    async def test_refresh_updates_last_used_at(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        (before,) = await sessions(client, alice.access_token)

        body = (await refresh(client, alice.refresh_token)).json()

        (after,) = await sessions(client, body["access_token"])
        assert after["id"] == before["id"]
        assert after["last_used_at"] != before["last_used_at"]
        assert after["last_used_at"] > before["last_used_at"]
        assert after["created_at"] == before["created_at"]
        assert after["expires_at"] == before["expires_at"]

    async def test_failed_refresh_does_not_update_last_used_at(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        (before,) = await sessions(client, alice.access_token)

        assert_refresh_refused(await refresh(client, alice.access_token))

        (after,) = await sessions(client, alice.access_token)
        assert after["last_used_at"] == before["last_used_at"]
