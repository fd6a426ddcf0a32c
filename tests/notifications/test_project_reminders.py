"""Reminders for tasks in projects: to the assignee, else to the creator, while a member.

The scan decides the recipient in its own SQL; these tests drive it with an explicit `now`, as
tests/notifications/test_scan.py does, and set the project up through the API.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.db.runner import Database
from taskhub.tables import Task
from tests.helpers import API, ApiUser, create_task, make_user
from tests.notifications.test_scan import NOW, iso, reminder_keys, reminders, scan
from tests.projects.helpers import PROJECTS, add_member, make_project

SOON = NOW + timedelta(minutes=30)


async def project_with(
    client: httpx.AsyncClient, owner: ApiUser, *members: tuple[ApiUser, str]
) -> str:
    project = await make_project(client, owner)
    for member, role in members:
        await add_member(client, owner, project["id"], member.username, role)
    project_id: str = project["id"]
    return project_id


async def project_task(
    client: httpx.AsyncClient, creator: ApiUser, project_id: str, **fields: Any
) -> dict[str, Any]:
    return await create_task(client, creator, project_id=project_id, due_at=iso(SOON), **fields)


async def leave(client: httpx.AsyncClient, member: ApiUser, project_id: str) -> None:
    response = await client.delete(
        f"{PROJECTS}/{project_id}/members/{member.username}", headers=member.headers
    )
    assert response.status_code == 204, response.text


async def recipients(app: FastAPI) -> dict[uuid.UUID | None, uuid.UUID]:
    """Each reminded task and who got its reminder."""
    return {n.task_id: n.user_id for n in await reminders(app)}


async def test_project_task_reminder_goes_to_its_assignee(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, alice, project_id, title="ship it", assignee_id=bob.id)

    assert await scan(app) == 1

    assert await recipients(app) == {uuid.UUID(task["id"]): uuid.UUID(bob.id)}
    bobs = (await client.get(f"{API}/notifications", headers=bob.headers)).json()["items"]
    alices = (await client.get(f"{API}/notifications", headers=alice.headers)).json()["items"]
    assert [n["task_id"] for n in bobs] == [task["id"]]
    assert bobs[0]["message"] == 'Task "ship it" is due at 2031-03-14 09:56 UTC'
    assert alices == []


async def test_unassigned_project_task_reminder_goes_to_its_creator(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, bob, project_id)

    assert await scan(app) == 1

    assert await recipients(app) == {uuid.UUID(task["id"]): uuid.UUID(bob.id)}


async def test_viewer_assignee_gets_the_reminder_too(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    # Any member may be assigned; the reminder follows the assignment, not the role.
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, alice, project_id, assignee_id=bob.id)
    role = await client.put(
        f"{PROJECTS}/{project_id}/members/bob", json={"role": "viewer"}, headers=alice.headers
    )
    assert role.status_code == 200, role.text

    assert await scan(app) == 1
    assert await recipients(app) == {uuid.UUID(task["id"]): uuid.UUID(bob.id)}


async def test_unassigned_task_whose_creator_left_gets_no_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, bob, project_id)
    await leave(client, bob, project_id)

    assert await scan(app) == 0
    assert await reminders(app) == []

    # It stays unreminded: whoever is assigned within the window gets it.
    assigned = await client.patch(
        f"{API}/tasks/{task['id']}", json={"assignee_id": alice.id}, headers=alice.headers
    )
    assert assigned.status_code == 200, assigned.text
    assert await scan(app) == 1
    assert await recipients(app) == {uuid.UUID(task["id"]): uuid.UUID(alice.id)}


async def test_unassigned_task_whose_creator_deleted_their_account_gets_no_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    await project_task(client, bob, project_id)
    gone = await client.delete(f"{API}/users/me", headers=bob.headers)
    assert gone.status_code == 204, gone.text

    assert await scan(app) == 0
    assert await reminders(app) == []


async def test_assignee_who_is_no_longer_a_member_gets_no_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    # Leaving clears assignments; should one survive (written around a removal), the scan
    # still reminds members only, and does not fall back to the creator for an assigned task.
    project_id = await project_with(client, alice, (bob, "editor"))
    carol = await make_user(client, "carol")
    task = await project_task(client, alice, project_id)
    database: Database = app.state.database
    await database.execute(
        sa.update(Task)
        .where(Task.id == uuid.UUID(task["id"]))
        .values(assignee_id=uuid.UUID(carol.id)),
        {},
    )

    assert await scan(app) == 0


async def test_personal_and_project_tasks_each_get_exactly_one_across_batches(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    carol = await make_user(client, "carol")
    await add_member(client, alice, project_id, carol.username, "editor")
    expected: dict[uuid.UUID | None, uuid.UUID] = {}
    # Interleaved on one due date, so every batch boundary falls inside a tie (keyset by id),
    # with tasks nobody is reminded of in between.
    for index in range(4):
        personal = await create_task(client, alice, due_at=iso(SOON))
        expected[uuid.UUID(personal["id"])] = uuid.UUID(alice.id)
        assigned = await project_task(client, alice, project_id, assignee_id=bob.id)
        expected[uuid.UUID(assigned["id"])] = uuid.UUID(bob.id)
        by_carol = await project_task(client, carol, project_id, title=f"orphan {index}")
        unassigned = await project_task(client, bob, project_id)
        expected[uuid.UUID(unassigned["id"])] = uuid.UUID(bob.id)
        assert by_carol["creator_id"] == carol.id
    await leave(client, carol, project_id)

    assert await scan(app, batch_size=2) == 12
    assert await scan(app, batch_size=2) == 0

    assert await recipients(app) == expected
    assert set((await reminder_keys(app)).values()) == {1}


async def test_reassigning_after_the_reminder_does_not_remind_again(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, alice, project_id, assignee_id=bob.id)
    assert await scan(app) == 1

    reassigned = await client.patch(
        f"{API}/tasks/{task['id']}", json={"assignee_id": alice.id}, headers=alice.headers
    )
    assert reassigned.status_code == 200, reassigned.text

    # Exactly once per task and due date, whoever it is for now.
    assert await scan(app) == 0
    assert await reminder_keys(app) == Counter({(uuid.UUID(task["id"]), SOON): 1})


async def test_deleting_a_project_task_deletes_its_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    task = await project_task(client, alice, project_id, assignee_id=bob.id)
    kept = await create_task(client, alice, due_at=iso(SOON))
    assert await scan(app) == 2

    response = await client.delete(f"{API}/tasks/{task['id']}", headers=alice.headers)
    assert response.status_code == 204, response.text

    assert await recipients(app) == {uuid.UUID(kept["id"]): uuid.UUID(alice.id)}


async def test_deleting_a_project_deletes_its_tasks_reminders(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await project_with(client, alice, (bob, "editor"))
    await project_task(client, alice, project_id, assignee_id=bob.id)
    await project_task(client, bob, project_id)
    kept = await create_task(client, bob, due_at=iso(SOON))
    assert await scan(app) == 3

    response = await client.delete(f"{PROJECTS}/{project_id}", headers=alice.headers)
    assert response.status_code == 204, response.text

    assert await recipients(app) == {uuid.UUID(kept["id"]): uuid.UUID(bob.id)}
    bobs = (await client.get(f"{API}/notifications", headers=bob.headers)).json()["items"]
    assert [n["task_id"] for n in bobs] == [kept["id"]]
