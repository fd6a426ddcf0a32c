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


async def search_finds(client: httpx.AsyncClient, user: ApiUser, q: str) -> list[str]:
    page = await client.get(f"{API}/tasks", params={"q": q}, headers=user.headers)
    return [item["id"] for item in page.json()["items"]]


@pytest.mark.parametrize(
    ("patch", "found", "gone"),
    [
        ({"title": "Buy bread"}, ["corner shop", "bread"], "milk"),
        ({"description": "NEW words"}, ["buy milk", "new words"], "corner"),
    ],
    ids=["title alone", "description alone"],
)
async def test_patching_one_half_keeps_the_other_searchable(
    client: httpx.AsyncClient,
    alice: ApiUser,
    patch: dict[str, str],
    found: list[str],
    gone: str,
) -> None:
    task = await create_task(client, alice, title="Buy milk", description="from the Corner Shop")
    patched = await client.patch(f"{API}/tasks/{task['id']}", json=patch, headers=alice.headers)
    assert patched.status_code == 200

    for q in found:
        assert await search_finds(client, alice, q) == [task["id"]], q
    assert await search_finds(client, alice, gone) == []


async def test_a_title_holding_the_separator_is_searched_as_if_it_held_a_space(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="Title\x1fwith a separator", description="old")
    patched = await client.patch(
        f"{API}/tasks/{task['id']}", json={"description": "new"}, headers=alice.headers
    )
    assert patched.status_code == 200

    assert await search_finds(client, alice, "title with") == [task["id"]]
    assert await search_finds(client, alice, "new") == [task["id"]]
    assert await search_finds(client, alice, "old") == []
