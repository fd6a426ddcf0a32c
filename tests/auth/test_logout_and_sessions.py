"""POST /auth/logout, GET /users/me/sessions and DELETE /users/me/sessions/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from taskhub.config import Settings
from tests.helpers import API, ApiUser, assert_problem, login
from tests.tokens import sid_of

LOGOUT = f"{API}/auth/logout"
SESSIONS = f"{API}/users/me/sessions"
ME = f"{API}/users/me"
INVALID_TOKEN = 'Bearer error="invalid_token"'


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def list_sessions(client: httpx.AsyncClient, access_token: str) -> list[dict[str, Any]]:
    response = await client.get(SESSIONS, headers=bearer(access_token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def login_with_agent(client: httpx.AsyncClient, user: ApiUser, agent: str) -> dict[str, Any]:
    response = await client.post(
        f"{API}/auth/login",
        data={"username": user.username, "password": user.password},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_token_rejected(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == INVALID_TOKEN


class TestLogout:
    async def test_logout_gives_204_with_no_body(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(LOGOUT, headers=alice.headers)

        assert response.status_code == 204
        assert response.content == b""

    async def test_logout_ends_the_access_token_at_once(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.post(LOGOUT, headers=alice.headers)).status_code == 204

        assert_token_rejected(await client.get(ME, headers=alice.headers))

    async def test_logout_ends_the_refresh_token_of_that_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.post(LOGOUT, headers=alice.headers)).status_code == 204

        response = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": alice.refresh_token}
        )
        assert_token_rejected(response)

    async def test_logout_twice_gives_401_the_second_time(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.post(LOGOUT, headers=alice.headers)).status_code == 204

        assert_token_rejected(await client.post(LOGOUT, headers=alice.headers))

    async def test_logout_ends_only_the_callers_session(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()

        assert (await client.post(LOGOUT, headers=alice.headers)).status_code == 204

        assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200
        assert (await client.get(ME, headers=bob.headers)).status_code == 200

    async def test_logout_with_refresh_token_gives_401_and_keeps_the_session(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert_token_rejected(await client.post(LOGOUT, headers=bearer(alice.refresh_token)))

        assert (await client.get(ME, headers=alice.headers)).status_code == 200

    async def test_logged_out_user_can_log_in_again(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.post(LOGOUT, headers=alice.headers)).status_code == 204

        fresh = (await login(client, "alice")).json()

        assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200


class TestListSessions:
    async def test_sessions_list_has_the_documented_fields(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        response = await client.get(SESSIONS, headers=alice.headers)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items"}
        (session,) = body["items"]
        assert set(session) == {
            "id",
            "created_at",
            "last_used_at",
            "expires_at",
            "current",
            "user_agent",
        }
        assert session["id"] == sid_of(alice.access_token)
        assert session["current"] is True
        for field in ("created_at", "last_used_at", "expires_at"):
            assert session[field].endswith("Z")
        created = datetime.fromisoformat(session["created_at"])
        expires = datetime.fromisoformat(session["expires_at"])
        assert expires - created == timedelta(seconds=settings.REFRESH_TOKEN_TTL)
        assert session["last_used_at"] == session["created_at"]

    async def test_only_the_callers_session_is_current(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()

        listed = await list_sessions(client, alice.access_token)

        assert {s["id"]: s["current"] for s in listed} == {
            sid_of(alice.access_token): True,
            sid_of(other["access_token"]): False,
        }
        from_other = await list_sessions(client, other["access_token"])
        assert [s["id"] for s in from_other if s["current"]] == [sid_of(other["access_token"])]

    async def test_sessions_are_listed_newest_first(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        second = (await login(client, "alice")).json()
        third = (await login(client, "alice")).json()

        listed = [s["id"] for s in await list_sessions(client, alice.access_token)]

        assert listed == [
            sid_of(third["access_token"]),
            sid_of(second["access_token"]),
            sid_of(alice.access_token),
        ]

    async def test_user_agent_comes_from_the_login_request(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        phone = await login_with_agent(client, alice, "TaskHub-iOS/3.2")
        laptop = await login_with_agent(client, alice, "Mozilla/5.0 (X11; Linux x86_64)")

        agents = {s["id"]: s["user_agent"] for s in await list_sessions(client, alice.access_token)}

        assert agents[sid_of(phone["access_token"])] == "TaskHub-iOS/3.2"
        assert agents[sid_of(laptop["access_token"])] == "Mozilla/5.0 (X11; Linux x86_64)"

    async def test_user_agent_is_not_changed_by_later_requests(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        phone = await login_with_agent(client, alice, "TaskHub-iOS/3.2")

        listed = await client.get(
            SESSIONS, headers={**bearer(phone["access_token"]), "User-Agent": "curl/8.0"}
        )

        current = [s for s in listed.json()["items"] if s["current"]]
        assert [s["user_agent"] for s in current] == ["TaskHub-iOS/3.2"]

    async def test_missing_user_agent_is_null(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        # httpx adds its own User-Agent; remove it by building the request by hand.
        request = client.build_request(
            "POST",
            f"{API}/auth/login",
            content=f"username=alice&password={alice.password}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        del request.headers["user-agent"]
        response = await client.send(request)
        assert response.status_code == 200, response.text
        access = response.json()["access_token"]

        current = [s for s in await list_sessions(client, access) if s["current"]]
        assert [s["user_agent"] for s in current] == [None]

    async def test_very_long_user_agent_is_truncated(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        body = await login_with_agent(client, alice, "A" * 1000)

        current = [s for s in await list_sessions(client, body["access_token"]) if s["current"]]
        assert [s["user_agent"] for s in current] == ["A" * 256]

    async def test_user_agent_with_odd_bytes_does_not_break_login(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            f"{API}/auth/login",
            data={"username": "alice", "password": alice.password},
            headers=[(b"User-Agent", b"agent \xff\xfe \x01 \xe2\x82\xac")],
        )

        assert response.status_code == 200, response.text
        assert len(await list_sessions(client, response.json()["access_token"])) == 2

    async def test_user_agent_with_nul_byte_is_stored_without_it(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        # PostgreSQL refuses NUL in text; the login must not turn into a 500.
        response = await client.post(
            f"{API}/auth/login",
            data={"username": "alice", "password": alice.password},
            headers=[(b"User-Agent", b"evil\x00agent")],
        )

        assert response.status_code == 200, response.text
        current = [
            s for s in await list_sessions(client, response.json()["access_token"]) if s["current"]
        ]
        assert [s["user_agent"] for s in current] == ["evilagent"]

    async def test_last_used_at_is_not_written_by_ordinary_requests(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        (before,) = await list_sessions(client, alice.access_token)

        for _ in range(3):
            assert (await client.get(ME, headers=alice.headers)).status_code == 200

        (after,) = await list_sessions(client, alice.access_token)
        assert after["last_used_at"] == before["last_used_at"]

    async def test_last_used_at_changes_on_refresh(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        (before,) = await list_sessions(client, alice.access_token)

        refreshed = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": alice.refresh_token}
        )
        assert refreshed.status_code == 200

        (after,) = await list_sessions(client, alice.access_token)
        assert after["last_used_at"] > before["last_used_at"]

    async def test_ended_sessions_are_not_listed(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        assert (await client.post(LOGOUT, headers=bearer(other["access_token"]))).status_code == 204

        listed = [s["id"] for s in await list_sessions(client, alice.access_token)]

        assert listed == [sid_of(alice.access_token)]

    async def test_sessions_list_shows_only_the_callers_sessions(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        listed = [s["id"] for s in await list_sessions(client, alice.access_token)]

        assert listed == [sid_of(alice.access_token)]
        assert sid_of(bob.access_token) not in listed


class TestRevokeSession:
    async def test_revoke_session_gives_204_and_its_tokens_die(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        sid = sid_of(other["access_token"])

        response = await client.delete(f"{SESSIONS}/{sid}", headers=alice.headers)

        assert response.status_code == 204
        assert response.content == b""
        assert_token_rejected(await client.get(ME, headers=bearer(other["access_token"])))
        refreshed = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert_token_rejected(refreshed)
        assert (await client.get(ME, headers=alice.headers)).status_code == 200

    async def test_revoke_own_current_session_ends_the_callers_token(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        sid = sid_of(alice.access_token)

        assert (await client.delete(f"{SESSIONS}/{sid}", headers=alice.headers)).status_code == 204

        assert_token_rejected(await client.get(ME, headers=alice.headers))

    async def test_revoke_another_users_session_gives_404_and_it_keeps_working(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        bobs_sid = sid_of(bob.access_token)

        response = await client.delete(f"{SESSIONS}/{bobs_sid}", headers=alice.headers)

        assert_problem(response, 404)
        assert (await client.get(ME, headers=bob.headers)).status_code == 200
        refreshed = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": bob.refresh_token}
        )
        assert refreshed.status_code == 200

    async def test_another_users_session_and_a_missing_one_look_the_same(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        bobs = await client.delete(f"{SESSIONS}/{sid_of(bob.access_token)}", headers=alice.headers)
        missing = await client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=alice.headers)

        assert_problem(bobs, 404)
        assert_problem(missing, 404)
        assert bobs.json() == missing.json()

    async def test_revoke_already_ended_session_gives_404(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        path = f"{SESSIONS}/{sid_of(other['access_token'])}"
        assert (await client.delete(path, headers=alice.headers)).status_code == 204

        assert_problem(await client.delete(path, headers=alice.headers), 404)

    async def test_revoke_session_id_matches_in_any_letter_case(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        sid = sid_of(other["access_token"]).upper()

        assert (await client.delete(f"{SESSIONS}/{sid}", headers=alice.headers)).status_code == 204

        assert_token_rejected(await client.get(ME, headers=bearer(other["access_token"])))

    @pytest.mark.parametrize(
        "session_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%C3%A9"]
    )
    async def test_revoke_with_non_uuid_id_gives_422(
        self, client: httpx.AsyncClient, alice: ApiUser, session_id: str
    ) -> None:
        response = await client.delete(f"{SESSIONS}/{session_id}", headers=alice.headers)

        assert_problem(response, 422)
