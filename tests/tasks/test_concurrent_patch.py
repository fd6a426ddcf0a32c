"""Every PATCH applies whole: concurrent PATCHes of one task never leave it with fields from two
of them (one UPDATE ... RETURNING each, so on PostgreSQL they truly overlap and still cannot tear),
and `search_text` follows a PATCH of the title or the description alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import API, ApiUser, create_task

STATUSES = ("todo", "in_progress", "done")
PRIORITIES = ("low", "medium", "high")
WRITERS = 20


def whole_patch(index: int) -> dict[str, Any]:
    return {
        "title": f"title {index}",
        "description": f"description {index}",
        "status": STATUSES[index % 3],
        "priority": PRIORITIES[(index // 3) % 3],
    }


@pytest.mark.parametrize("attempt", range(6))
async def test_concurrent_whole_patches_leave_exactly_one_of_them(
    client: httpx.AsyncClient, alice: ApiUser, attempt: int
) -> None:
    task = await create_task(client, alice, title=f"contended {attempt}")
    url = f"{API}/tasks/{task['id']}"

    responses = await asyncio.gather(
        *(client.patch(url, json=whole_patch(i), headers=alice.headers) for i in range(WRITERS))
    )

    assert {response.status_code for response in responses} == {200}
    final = (await client.get(url, headers=alice.headers)).json()
    winner = int(final["title"].removeprefix("title "))
    assert {name: final[name] for name in whole_patch(winner)} == whole_patch(winner)
    assert (final["completed_at"] is not None) == (final["status"] == "done")


async def test_patching_the_title_alone_keeps_the_description_searchable(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="Buy milk", description="from the Corner Shop")
    url = f"{API}/tasks/{task['id']}"
    patched = await client.patch(url, json={"title": "Buy bread"}, headers=alice.headers)
    assert patched.status_code == 200

    async def found(q: str) -> bool:
        page = await client.get(f"{API}/tasks", params={"q": q}, headers=alice.headers)
        return [item["id"] for item in page.json()["items"]] == [task["id"]]

    assert await found("corner shop")
    assert await found("bread")
    assert not await found("milk")


async def test_patching_the_description_alone_keeps_the_title_searchable(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="Title\x1fwith a separator", description="old")
    url = f"{API}/tasks/{task['id']}"
    patched = await client.patch(url, json={"description": "NEW words"}, headers=alice.headers)
    assert patched.status_code == 200

    async def found(q: str) -> bool:
        page = await client.get(f"{API}/tasks", params={"q": q}, headers=alice.headers)
        return [item["id"] for item in page.json()["items"]] == [task["id"]]

    assert await found("with a separator")
    assert await found("new words")
    assert not await found("old")
