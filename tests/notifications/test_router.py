"""GET /notifications and POST /notifications/{id}/read: order, filter, cursors, ownership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.notifications.service import scan_due_reminders
from taskhub.tables import Notification
from tests.helpers import API, ApiUser, assert_problem, create_task

NOTIFICATIONS = f"{API}/notifications"
NOTIFICATION_FIELDS = {"id", "task_id", "kind", "message", "created_at", "read_at"}
BASE = datetime(2031, 6, 1, 8, 0, tzinfo=UTC)
LEAD = 3600


@dataclass(frozen=True)
class OrderKey:
    created_at: datetime
    id: uuid.UUID


def read_url(notification_id: str) -> str:
    return f"{NOTIFICATIONS}/{notification_id}/read"


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


async def notify(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser, *, at: datetime, count: int = 1
) -> list[str]:
    """Create `count` tasks due 10 minutes after `at` and run the scan at `at`: their
    notifications share `created_at == at`. Returns the task ids."""
    due = (at + timedelta(minutes=10)).isoformat()
    task_ids = [(await create_task(client, user, due_at=due))["id"] for _ in range(count)]
    await scan_due_reminders(app.state.database, lead_time_seconds=LEAD, now=at)
    return task_ids


async def expected_order(app: FastAPI, user: ApiUser, *, unread_only: bool = False) -> list[str]:
    """The user's notification ids as the contract orders them: newest first, ties by id."""
    query = sa.select(Notification.created_at, Notification.id).where(
        Notification.user_id == uuid.UUID(user.id)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    keys = await app.state.database.records(query, {}, OrderKey)
    keys.sort(key=lambda key: (key.created_at, key.id), reverse=True)
    return [str(key.id) for key in keys]


async def list_page(
    client: httpx.AsyncClient, user: ApiUser, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.get(NOTIFICATIONS, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


async def walk(
    client: httpx.AsyncClient, user: ApiUser, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every page's items, following next_cursor to the end."""
    first = await list_page(client, user, params)
    return first["items"] + await walk_from(client, user, first["next_cursor"], params)


async def walk_from(
    client: httpx.AsyncClient, user: ApiUser, cursor: str | None, params: dict[str, Any]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(100):  # bounded: a cursor loop fails the test instead of hanging it
        if cursor is None:
            return items
        page = await list_page(client, user, {**params, "cursor": cursor})
        assert page["items"], "a page with a cursor before it must not be empty"
        items += page["items"]
        cursor = page["next_cursor"]
    raise AssertionError("pagination did not end")


async def mark_read(
    client: httpx.AsyncClient, user: ApiUser, notification_id: str
) -> httpx.Response:
    return await client.post(read_url(notification_id), headers=user.headers)


class TestListNotifications:
    async def test_newest_first(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        [oldest] = await notify(app, client, alice, at=BASE)
        [middle] = await notify(app, client, alice, at=BASE + timedelta(hours=3))
        [newest] = await notify(app, client, alice, at=BASE + timedelta(hours=6))

        items = (await list_page(client, alice))["items"]

        assert [n["task_id"] for n in items] == [newest, middle, oldest]
        assert [ts(n["created_at"]) for n in items] == [
            BASE + timedelta(hours=6),
            BASE + timedelta(hours=3),
            BASE,
        ]
        for item in items:
            assert set(item) == NOTIFICATION_FIELDS
            assert item["kind"] == "task_due"
            assert item["read_at"] is None
            assert item["message"].startswith('Task "a task" is due at ')

    async def test_same_created_at_is_ordered_by_id(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=6)
        items = (await list_page(client, alice))["items"]
        assert [n["id"] for n in items] == await expected_order(app, alice)
        assert len(items) == 6

    async def test_lists_only_the_callers_notifications(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        alices = await notify(app, client, alice, at=BASE, count=2)
        bobs = await notify(app, client, bob, at=BASE)

        assert sorted(n["task_id"] for n in (await list_page(client, alice))["items"]) == sorted(
            alices
        )
        assert [n["task_id"] for n in (await list_page(client, bob))["items"]] == bobs

    async def test_empty_list(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        assert await list_page(client, alice) == {"items": [], "next_cursor": None}

    async def test_unread_true_lists_only_unread_ones(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=3)
        everything = (await list_page(client, alice))["items"]
        read_id = everything[1]["id"]
        assert (await mark_read(client, alice, read_id)).status_code == 200

        unread = (await list_page(client, alice, {"unread": "true"}))["items"]
        all_again = (await list_page(client, alice, {"unread": "false"}))["items"]
        default = (await list_page(client, alice))["items"]

        assert [n["id"] for n in unread] == [everything[0]["id"], everything[2]["id"]]
        assert [n["id"] for n in all_again] == [n["id"] for n in everything]
        assert [n["id"] for n in default] == [n["id"] for n in everything]
        assert [n["read_at"] is not None for n in default] == [False, True, False]

    @pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", ""])
    async def test_limit_out_of_bounds_is_422(
        self, client: httpx.AsyncClient, alice: ApiUser, limit: str
    ) -> None:
        response = await client.get(NOTIFICATIONS, params={"limit": limit}, headers=alice.headers)
        body = assert_problem(response, 422)
        assert [e["loc"] for e in body["errors"]] == [["query", "limit"]]

    @pytest.mark.parametrize("limit", [1, 100])
    async def test_limit_at_the_bounds_is_accepted(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, limit: int
    ) -> None:
        await notify(app, client, alice, at=BASE, count=2)
        page = await list_page(client, alice, {"limit": limit})
        assert len(page["items"]) == min(limit, 2)
        assert (page["next_cursor"] is None) is (limit >= 2)

    async def test_default_limit_is_20(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=21)
        page = await list_page(client, alice)
        assert len(page["items"]) == 20
        assert page["next_cursor"] is not None

    @pytest.mark.parametrize("limit", [1, 4, 7])
    async def test_cursor_walk_returns_every_notification_exactly_once(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, limit: int
    ) -> None:
        # Three scans: pages break inside groups that share created_at.
        for hour in range(3):
            await notify(app, client, alice, at=BASE + timedelta(hours=3 * hour), count=5)
        await notify(app, client, bob, at=BASE, count=2)

        items = await walk(client, alice, {"limit": limit})

        assert [n["id"] for n in items] == await expected_order(app, alice)
        assert len(items) == 15

    async def test_cursor_walk_of_unread_ones(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=4)
        await notify(app, client, alice, at=BASE + timedelta(hours=3), count=4)
        everything = (await list_page(client, alice))["items"]
        for item in everything[::3]:
            assert (await mark_read(client, alice, item["id"])).status_code == 200

        items = await walk(client, alice, {"limit": 2, "unread": "true"})

        assert [n["id"] for n in items] == await expected_order(app, alice, unread_only=True)
        assert len(items) == 5

    async def test_cursor_walk_while_new_notifications_arrive(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=6)
        before = await expected_order(app, alice)
        first = await list_page(client, alice, {"limit": 2})

        await notify(app, client, alice, at=BASE + timedelta(hours=3), count=3)  # newer ones
        rest = await walk_from(client, alice, first["next_cursor"], {"limit": 2})

        assert [n["id"] for n in first["items"] + rest] == before

    @pytest.mark.parametrize(
        "tamper",
        [
            "flip a character of the payload",
            "flip a character of the tag",
            "drop the tag",
            "garbage",
            "empty",
        ],
    )
    async def test_tampered_cursor_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, tamper: str
    ) -> None:
        await notify(app, client, alice, at=BASE, count=3)
        cursor: str = (await list_page(client, alice, {"limit": 1}))["next_cursor"]
        body, _, tag = cursor.partition(".")
        altered = {
            "flip a character of the payload": flip(body) + "." + tag,
            "flip a character of the tag": body + "." + flip(tag),
            "drop the tag": body,
            "garbage": "%%not-a-cursor%%",
            "empty": "",
        }[tamper]

        response = await client.get(
            NOTIFICATIONS, params={"limit": 1, "cursor": altered}, headers=alice.headers
        )

        problem = assert_problem(response, 422)
        assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]]

    @pytest.mark.parametrize(("made_with", "used_with"), [("false", "true"), ("true", "false")])
    async def test_cursor_reused_with_unread_toggled_is_422(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: ApiUser,
        made_with: str,
        used_with: str,
    ) -> None:
        await notify(app, client, alice, at=BASE, count=3)
        cursor = (await list_page(client, alice, {"limit": 1, "unread": made_with}))["next_cursor"]
        assert cursor is not None

        response = await client.get(
            NOTIFICATIONS,
            params={"limit": 1, "unread": used_with, "cursor": cursor},
            headers=alice.headers,
        )

        problem = assert_problem(response, 422)
        assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]]

    async def test_another_users_cursor_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE, count=3)
        cursor = (await list_page(client, alice, {"limit": 1}))["next_cursor"]
        response = await client.get(
            NOTIFICATIONS, params={"limit": 1, "cursor": cursor}, headers=bob.headers
        )
        assert_problem(response, 422)

    async def test_a_task_cursor_is_not_a_notification_cursor(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        for _ in range(2):
            await create_task(client, alice)
        task_page = await client.get(f"{API}/tasks", params={"limit": 1}, headers=alice.headers)
        task_cursor = task_page.json()["next_cursor"]
        assert task_cursor is not None
        response = await client.get(
            NOTIFICATIONS, params={"cursor": task_cursor}, headers=alice.headers
        )
        assert_problem(response, 422)


class TestMarkNotificationRead:
    async def test_sets_read_at(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        [task_id] = await notify(app, client, alice, at=BASE)
        [item] = (await list_page(client, alice))["items"]

        before = datetime.now(UTC)
        response = await mark_read(client, alice, item["id"])
        after = datetime.now(UTC)

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == NOTIFICATION_FIELDS
        assert body["id"] == item["id"]
        assert body["task_id"] == task_id
        # The server's clock at the time of the call (PostgreSQL keeps microseconds, as we do).
        assert before - timedelta(seconds=1) <= ts(body["read_at"]) <= after + timedelta(seconds=1)
        assert {k: v for k, v in body.items() if k != "read_at"} == {
            k: v for k, v in item.items() if k != "read_at"
        }
        [listed] = (await list_page(client, alice))["items"]
        assert listed == body

    async def test_reading_again_keeps_the_first_read_at(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE)
        [item] = (await list_page(client, alice))["items"]

        first = await mark_read(client, alice, item["id"])
        second = await mark_read(client, alice, item["id"])

        assert first.status_code == second.status_code == 200
        assert first.json()["read_at"] is not None
        assert second.json() == first.json()

    async def test_upper_case_id_is_the_same_notification(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE)
        [item] = (await list_page(client, alice))["items"]
        response = await mark_read(client, alice, item["id"].upper())
        assert response.status_code == 200, response.text
        assert response.json()["id"] == item["id"]

    async def test_another_users_is_404_like_a_missing_one(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE)
        [item] = (await list_page(client, alice))["items"]

        theirs = await mark_read(client, bob, item["id"])
        missing = await mark_read(client, bob, str(uuid.uuid4()))

        assert assert_problem(theirs, 404) == assert_problem(missing, 404)
        assert theirs.json()["detail"] == "Notification not found"
        # Bob's attempt changed nothing.
        [still] = (await list_page(client, alice))["items"]
        assert still["read_at"] is None

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "g" * 32, "x" * 300])
    async def test_non_uuid_id_is_422(
        self, client: httpx.AsyncClient, alice: ApiUser, bad_id: str
    ) -> None:
        response = await mark_read(client, alice, bad_id)
        problem = assert_problem(response, 422)
        assert [e["loc"] for e in problem["errors"]] == [["path", "notification_id"]]

    async def test_without_token_is_401(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await notify(app, client, alice, at=BASE)
        [item] = (await list_page(client, alice))["items"]

        response = await client.post(read_url(item["id"]))

        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        [still] = (await list_page(client, alice))["items"]
        assert still["read_at"] is None


def flip(text: str) -> str:
    """Change the middle character to another base64url character."""
    middle = len(text) // 2
    replacement = "A" if text[middle] != "A" else "B"
    return text[:middle] + replacement + text[middle + 1 :]
