"""Helpers for the tasks tests: listing, walking pages, and the order the contract promises."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.helpers import API, ApiUser

TASKS = f"{API}/tasks"
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}
SORTS = (
    "created_at",
    "-created_at",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
    "updated_at",
    "-updated_at",
)
TASK_FIELDS = {
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_at",
    "completed_at",
    "created_at",
    "updated_at",
    # added 2026-11-30: tasks in projects
    "project_id",
    "assignee_id",
    "creator_id",
    "labels",
}


def task_url(task_id: str) -> str:
    return f"{TASKS}/{task_id}"


def ts(value: str) -> datetime:
    """Parse a timestamp the API returned; it must carry an offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


async def list_tasks(
    client: httpx.AsyncClient, user: ApiUser, params: Any = None
) -> httpx.Response:
    return await client.get(TASKS, params=params, headers=user.headers)


async def list_ok(client: httpx.AsyncClient, user: ApiUser, params: Any = None) -> dict[str, Any]:
    response = await list_tasks(client, user, params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


async def list_ids(client: httpx.AsyncClient, user: ApiUser, params: Any = None) -> list[str]:
    """Every id of a listing that fits in one page of 100."""
    body = await list_ok(client, user, _with(params, ("limit", "100")))
    assert body["next_cursor"] is None
    return [item["id"] for item in body["items"]]


async def walk(
    client: httpx.AsyncClient, user: ApiUser, params: Any = None, *, limit: int = 4
) -> list[dict[str, Any]]:
    """Follow next_cursor from the first page to the last; every page but the last is full."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        page_params = _with(params, ("limit", str(limit)))
        if cursor is not None:
            page_params.append(("cursor", cursor))
        body = await list_ok(client, user, page_params)
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            assert len(body["items"]) <= limit
            return items
        assert len(body["items"]) == limit
    raise AssertionError("pagination did not end")


def _with(params: Any, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if isinstance(params, dict):
        pairs.extend((key, str(value)) for key, value in params.items())
    elif params:
        pairs.extend(params)
    pairs.extend(extra)
    return pairs


def expected_order(tasks: list[dict[str, Any]], sort: str) -> list[str]:
    """The ids in the order the contract promises: key, then id in the same direction,
    and tasks without due_at last in both due_at directions."""
    descending = sort.startswith("-")
    column = sort.lstrip("-")

    def key_of(task: dict[str, Any]) -> Any:
        value = task[column]
        if column == "priority":
            return PRIORITY_RANK[value]
        return ts(value)

    present = [task for task in tasks if task[column] is not None]
    missing = [task for task in tasks if task[column] is None]
    present.sort(key=lambda task: (key_of(task), uuid.UUID(task["id"])), reverse=descending)
    missing.sort(key=lambda task: uuid.UUID(task["id"]), reverse=descending)
    return [task["id"] for task in present + missing]


def flip(text: str, index: int) -> str:
    """The same string with one base64url character replaced by another."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]
