"""Another user's task does not exist for you: 404 on every method, indistinguishable from a
missing task, and left untouched."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import ApiUser, assert_problem, create_task
from tests.tasks.helpers import SORTS, TASKS, list_ids, task_url, walk


async def request(
    client: httpx.AsyncClient, user: ApiUser, method: str, task_id: str
) -> httpx.Response:
    url = task_url(task_id)
    if method == "PATCH":
        return await client.patch(
            url, json={"title": "hijacked", "status": "done"}, headers=user.headers
        )
    return await client.request(method, url, headers=user.headers)


def comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body: dict[str, Any] = response.json()
    return response.status_code, response.headers["content-type"], body


async def test_other_users_task_is_404_like_a_missing_one_and_stays_unchanged(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    task = await create_task(
        client,
        alice,
        title="alice's secret",
        description="private",
        priority="high",
        due_at="2026-12-01T10:00:00Z",
    )
    for method in ("GET", "PATCH", "DELETE"):
        foreign = await request(client, bob, method, task["id"])
        missing = await request(client, bob, method, str(uuid.uuid4()))
        assert_problem(foreign, 404)
        assert comparable(foreign) == comparable(missing), method
        assert "alice" not in foreign.text
        assert task["id"] not in foreign.text

        unchanged = await client.get(task_url(task["id"]), headers=alice.headers)
        assert unchanged.status_code == 200, method
        assert unchanged.json() == task, method


async def test_other_users_task_is_404_with_upper_case_id_too(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    task = await create_task(client, alice)
    for method in ("GET", "PATCH", "DELETE"):
        foreign = await request(client, bob, method, task["id"].upper())
        missing = await request(client, bob, method, str(uuid.uuid4()).upper())
        assert_problem(foreign, 404)
        assert comparable(foreign) == comparable(missing), method
    assert (await client.get(task_url(task["id"]), headers=alice.headers)).json() == task


async def test_patch_of_other_users_task_with_empty_body_is_404(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    task = await create_task(client, alice)
    response = await client.patch(task_url(task["id"]), json={}, headers=bob.headers)
    assert_problem(response, 404)


async def test_owner_still_reaches_the_task_after_other_users_attempts(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    task = await create_task(client, alice)
    for method in ("GET", "PATCH", "DELETE"):
        assert (await request(client, bob, method, task["id"])).status_code == 404
    patched = await client.patch(
        task_url(task["id"]), json={"title": "mine"}, headers=alice.headers
    )
    assert patched.status_code == 200
    deleted = await client.delete(task_url(task["id"]), headers=alice.headers)
    assert deleted.status_code == 204


async def test_same_title_tasks_of_two_users_stay_separate(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    alices = await create_task(client, alice, title="shared title")
    bobs = await create_task(client, bob, title="shared title")
    assert (await client.get(task_url(bobs["id"]), headers=bob.headers)).json() == bobs
    assert (await client.get(task_url(alices["id"]), headers=alice.headers)).json() == alices
    await client.delete(task_url(bobs["id"]), headers=bob.headers)
    assert (await client.get(task_url(alices["id"]), headers=alice.headers)).status_code == 200


async def test_list_never_contains_other_users_tasks(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    alice_ids = {
        (await create_task(client, alice, title=f"alice findme {n}", status=status))["id"]
        for n, status in enumerate(["todo", "in_progress", "done"])
    }
    bob_ids = {(await create_task(client, bob, title="bob findme"))["id"]}

    assert set(await list_ids(client, bob)) == bob_ids
    assert set(await list_ids(client, alice)) == alice_ids
    for params in (
        {"q": "findme"},
        {"q": "alice"},
        [("status", "todo"), ("status", "in_progress"), ("status", "done")],
        {"priority": "medium"},
    ):
        assert set(await list_ids(client, bob, params)) <= bob_ids
    for sort in SORTS:
        assert {item["id"] for item in await walk(client, bob, {"sort": sort}, limit=1)} == bob_ids


async def test_user_without_tasks_gets_an_empty_list(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    await create_task(client, alice)
    response = await client.get(TASKS, headers=bob.headers)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
