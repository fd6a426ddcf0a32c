"""Helpers for the comments tests: comment on a task, and read a task's comments as someone."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import API, ApiUser

COMMENTS = f"{API}/comments"
COMMENT_FIELDS = {"id", "task_id", "author_id", "author", "body", "created_at", "updated_at"}


def comments_url(task_id: str) -> str:
    return f"{API}/tasks/{task_id}/comments"


def comment_url(comment_id: str) -> str:
    return f"{COMMENTS}/{comment_id}"


async def post_comment(
    client: httpx.AsyncClient, user: ApiUser, task_id: str, body: str = "looks good"
) -> httpx.Response:
    return await client.post(comments_url(task_id), json={"body": body}, headers=user.headers)


async def make_comment(
    client: httpx.AsyncClient, user: ApiUser, task_id: str, body: str = "looks good"
) -> dict[str, Any]:
    response = await post_comment(client, user, task_id, body)
    assert response.status_code == 201, response.text
    comment: dict[str, Any] = response.json()
    return comment


async def all_comments(client: httpx.AsyncClient, user: ApiUser, task_id: str) -> list[Any]:
    """Every comment of the task as `user` sees it, walking every page."""
    items: list[Any] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = await client.get(comments_url(task_id), params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]
