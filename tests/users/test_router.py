"""/api/v1/users/me: read the account, change the password, delete the account."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.clock import new_id, utcnow
from taskhub.tables import TASK_DUE, Notification, RefreshToken, Task, User, UserSession
from tests.helpers import (
    API,
    DEFAULT_PASSWORD,
    ApiUser,
    assert_problem,
    create_task,
    login,
    make_user,
)

ME = f"{API}/users/me"
PASSWORD = f"{ME}/password"
NEW_PASSWORD = "quartz-lantern-meadow-7"


async def _count(app: FastAPI, statement: sa.Select[int]) -> int:
    return int(await app.state.database.scalar(statement, {}))


async def _rows_owned_by(app: FastAPI, user_id: str) -> dict[str, int]:
    owner = uuid.UUID(user_id)
    return {
        "user": await _count(
            app, sa.select(sa.func.count()).select_from(User).where(User.id == owner)
        ),
        "task": await _count(
            app, sa.select(sa.func.count()).select_from(Task).where(Task.owner_id == owner)
        ),
        "session": await _count(
            app,
            sa.select(sa.func.count()).select_from(UserSession).where(UserSession.user_id == owner),
        ),
        "notification": await _count(
            app,
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.user_id == owner),
        ),
        "refresh_token": await _count(
            app,
            sa.select(sa.func.count())
            .select_from(RefreshToken)
            .join(UserSession, UserSession.id == RefreshToken.session_id)
            .where(UserSession.user_id == owner),
        ),
    }


async def _add_reminder(app: FastAPI, user: ApiUser, task: dict[str, object]) -> None:
    """A reminder as the worker writes it (the scan itself is tested with notifications)."""
    await app.state.database.execute(
        sa.insert(Notification).values(
            id=new_id(),
            user_id=uuid.UUID(user.id),
            task_id=uuid.UUID(str(task["id"])),
            kind=TASK_DUE,
            message="due soon",
            created_at=utcnow(),
        ),
        {},
    )


class TestReadCurrentUser:
    async def test_returns_id_username_and_created_at_only(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.get(ME, headers=alice.headers)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"id", "username", "created_at"}
        assert body["id"] == alice.id
        assert body["username"] == "alice"
        assert body["created_at"].endswith("Z")

    async def test_says_nothing_about_the_password(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.get(ME, headers=alice.headers)

        text = response.text.lower()
        assert "password" not in text
        assert "hash" not in text
        assert "$2b$" not in text
        assert alice.password not in response.text


class TestChangePassword:
    async def test_wrong_current_password_is_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            PASSWORD,
            json={"current_password": "not-my-password-9", "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert_problem(response, 401)
        assert (await login(client, "alice", DEFAULT_PASSWORD)).status_code == 200
        assert (await login(client, "alice", NEW_PASSWORD)).status_code == 401

    @pytest.mark.parametrize(
        ("new_password", "reason"),
        [
            pytest.param("short7!", "at least 8", id="too-short"),
            pytest.param("é" * 37, "72 bytes", id="over-72-utf8-bytes"),
            pytest.param("Wanderer-42", "username", id="equal-to-username"),
            pytest.param("password1", "common", id="common"),
        ],
    )
    async def test_new_password_breaking_the_registration_rules_is_422(
        self, client: httpx.AsyncClient, new_password: str, reason: str
    ) -> None:
        user = await make_user(client, "wanderer-42")

        response = await client.post(
            PASSWORD,
            json={"current_password": user.password, "new_password": new_password},
            headers=user.headers,
        )

        body = assert_problem(response, 422)
        [error] = body["errors"]
        assert error["loc"] == ["body", "new_password"]
        assert reason in error["msg"]
        assert new_password not in response.text
        assert (await login(client, user.username, user.password)).status_code == 200

    async def test_missing_field_is_422(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        response = await client.post(
            PASSWORD, json={"new_password": NEW_PASSWORD}, headers=alice.headers
        )

        body = assert_problem(response, 422)
        assert ["body", "current_password"] in [error["loc"] for error in body["errors"]]

    async def test_success_is_204_and_only_the_new_password_logs_in(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            PASSWORD,
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert response.status_code == 204
        assert response.content == b""
        assert (await login(client, "alice", alice.password)).status_code == 401
        assert (await login(client, "alice", NEW_PASSWORD)).status_code == 200

    async def test_success_ends_every_other_session_but_keeps_the_callers(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice", alice.password)).json()
        other_headers = {"Authorization": f"Bearer {other['access_token']}"}
        assert (await client.get(ME, headers=other_headers)).status_code == 200

        response = await client.post(
            PASSWORD,
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert response.status_code == 204
        rejected = await client.get(ME, headers=other_headers)
        assert_problem(rejected, 401)
        assert rejected.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        refreshed = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert_problem(refreshed, 401)
        assert (await client.get(ME, headers=alice.headers)).status_code == 200
        sessions = await client.get(f"{ME}/sessions", headers=alice.headers)
        assert [item["current"] for item in sessions.json()["items"]] == [True]
        refreshed_own = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": alice.refresh_token}
        )
        assert refreshed_own.status_code == 200

    async def test_other_users_sessions_are_untouched(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        response = await client.post(
            PASSWORD,
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert response.status_code == 204
        assert (await client.get(ME, headers=bob.headers)).status_code == 200
        assert (await login(client, "bob", bob.password)).status_code == 200


class TestDeleteAccount:
    async def test_success_is_204_and_the_users_tokens_then_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice", alice.password)).json()

        response = await client.delete(ME, headers=alice.headers)

        assert response.status_code == 204
        assert response.content == b""
        for token in (alice.access_token, other["access_token"]):
            rejected = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
            assert_problem(rejected, 401)
        for token in (alice.refresh_token, other["refresh_token"]):
            refreshed = await client.post(f"{API}/auth/refresh", json={"refresh_token": token})
            assert_problem(refreshed, 401)

    async def test_tasks_and_sessions_are_gone_from_the_database(
        self, client: httpx.AsyncClient, app: FastAPI, alice: ApiUser
    ) -> None:
        await create_task(client, alice, title="one")
        await _add_reminder(app, alice, await create_task(client, alice, title="two"))
        assert await _rows_owned_by(app, alice.id) == {
            "user": 1,
            "task": 2,
            "session": 1,
            "notification": 1,
            "refresh_token": 1,
        }

        response = await client.delete(ME, headers=alice.headers)

        assert response.status_code == 204
        assert await _rows_owned_by(app, alice.id) == {
            "user": 0,
            "task": 0,
            "session": 0,
            "notification": 0,
            "refresh_token": 0,
        }

    async def test_logging_in_again_is_401(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204

        response = await login(client, "alice", alice.password)

        assert_problem(response, 401)

    async def test_another_users_data_is_untouched(
        self, client: httpx.AsyncClient, app: FastAPI, alice: ApiUser, bob: ApiUser
    ) -> None:
        await _add_reminder(app, alice, await create_task(client, alice))
        bobs_task = await create_task(client, bob, title="bob's")
        await _add_reminder(app, bob, bobs_task)
        before = await _rows_owned_by(app, bob.id)
        assert before["notification"] == 1

        assert (await client.delete(ME, headers=alice.headers)).status_code == 204

        assert await _rows_owned_by(app, bob.id) == before
        assert (await client.get(ME, headers=bob.headers)).json()["username"] == "bob"
        fetched = await client.get(f"{API}/tasks/{bobs_task['id']}", headers=bob.headers)
        assert fetched.json() == bobs_task

    async def test_the_username_is_free_again(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204

        response = await client.post(
            f"{API}/auth/register", json={"username": "alice", "password": NEW_PASSWORD}
        )

        assert response.status_code == 201
        assert response.json()["id"] != alice.id
