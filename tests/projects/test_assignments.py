"""What membership changes do to assignments: leaving or being removed clears them in that
project (in the removal's own transaction); role changes and transfers leave them alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskhub.access import leaving
from tests.conftest import client_of
from tests.helpers import API, ApiUser, create_task, make_user
from tests.projects.helpers import PROJECTS, add_member, make_project


async def read_task(client: httpx.AsyncClient, user: ApiUser, task_id: str) -> httpx.Response:
    response = await client.get(f"{API}/tasks/{task_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response


async def assignee_of(client: httpx.AsyncClient, user: ApiUser, task: dict[str, Any]) -> Any:
    return (await read_task(client, user, task["id"])).json()["assignee_id"]


async def members_of(client: httpx.AsyncClient, owner: ApiUser, project_id: str) -> list[str]:
    response = await client.get(f"{PROJECTS}/{project_id}/members", headers=owner.headers)
    return [member["username"] for member in response.json()["items"]]


async def remove(
    client: httpx.AsyncClient, caller: ApiUser, project_id: str, username: str
) -> httpx.Response:
    return await client.delete(
        f"{PROJECTS}/{project_id}/members/{username}", headers=caller.headers
    )


async def test_leaving_clears_the_leavers_assignments_in_that_project_only(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    carol = await make_user(client, "carol")
    left = (await make_project(client, alice, name="Left"))["id"]
    stayed = (await make_project(client, alice, name="Stayed"))["id"]
    for project_id in (left, stayed):
        await add_member(client, alice, project_id, "bob", "editor")
        await add_member(client, alice, project_id, "carol", "editor")
    bobs = await create_task(client, alice, project_id=left, assignee_id=bob.id)
    carols = await create_task(client, alice, project_id=left, assignee_id=carol.id)
    elsewhere = await create_task(client, alice, project_id=stayed, assignee_id=bob.id)
    personal = await create_task(client, bob, assignee_id=bob.id)
    etag_before = (await read_task(client, alice, bobs["id"])).headers["etag"]

    response = await remove(client, bob, left, "bob")
    assert response.status_code == 204, response.text

    cleared = await read_task(client, alice, bobs["id"])
    assert cleared.json()["assignee_id"] is None
    assert cleared.headers["etag"] != etag_before  # a change like any other: a new ETag
    assert await assignee_of(client, alice, carols) == carol.id
    assert await assignee_of(client, alice, elsewhere) == bob.id
    assert await assignee_of(client, bob, personal) == bob.id


async def test_removal_by_an_admin_clears_the_removed_members_assignments(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    carol = await make_user(client, "carol")
    project_id = (await make_project(client, alice))["id"]
    await add_member(client, alice, project_id, "bob", "admin")
    await add_member(client, alice, project_id, "carol", "viewer")
    task = await create_task(client, alice, project_id=project_id, assignee_id=carol.id)

    response = await remove(client, bob, project_id, "carol")
    assert response.status_code == 204, response.text

    assert await assignee_of(client, alice, task) is None


async def test_a_refused_removal_leaves_the_assignments(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    carol = await make_user(client, "carol")
    project_id = (await make_project(client, alice))["id"]
    await add_member(client, alice, project_id, "bob", "editor")
    await add_member(client, alice, project_id, "carol", "viewer")
    task = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)

    response = await remove(client, carol, project_id, "bob")
    assert response.status_code == 403, response.text

    assert await assignee_of(client, alice, task) == bob.id


async def test_removal_and_unassigning_commit_together_or_not_at_all(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: ApiUser,
    bob: ApiUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project_id = (await make_project(client, alice))["id"]
    await add_member(client, alice, project_id, "bob", "editor")
    task = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)

    async def failing_unassign(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database went away between the two statements")

    monkeypatch.setattr(leaving, "unassign_member", failing_unassign)
    async with client_of(app) as failing:
        response = await remove(failing, alice, project_id, "bob")
    assert response.status_code == 500
    monkeypatch.undo()

    # The removal was rolled back with the failed unassigning: bob is still a member and still
    # assigned, and removing him again now works whole.
    assert "bob" in await members_of(client, alice, project_id)
    assert await assignee_of(client, alice, task) == bob.id
    assert (await remove(client, alice, project_id, "bob")).status_code == 204
    assert await assignee_of(client, alice, task) is None


async def test_role_changes_keep_assignments(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = (await make_project(client, alice))["id"]
    await add_member(client, alice, project_id, "bob", "editor")
    task = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)
    etag_before = (await read_task(client, alice, task["id"])).headers["etag"]

    for role in ("viewer", "admin", "commenter"):
        await add_member(client, alice, project_id, "bob", role)

    after = await read_task(client, alice, task["id"])
    assert after.json()["assignee_id"] == bob.id
    assert after.headers["etag"] == etag_before


async def test_transferring_ownership_keeps_assignments(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = (await make_project(client, alice))["id"]
    await add_member(client, alice, project_id, "bob", "editor")
    to_alice = await create_task(client, alice, project_id=project_id, assignee_id=alice.id)
    to_bob = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)

    response = await client.post(
        f"{PROJECTS}/{project_id}/transfer", json={"username": "bob"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text

    assert await assignee_of(client, bob, to_alice) == alice.id
    assert await assignee_of(client, bob, to_bob) == bob.id
