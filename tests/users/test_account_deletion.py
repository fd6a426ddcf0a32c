"""DELETE /users/me and what it does to other people's projects: the tasks the user created
there stay (creator null), their assignments become null, their comments stay (author null);
their personal tasks and the projects they were alone in go. The foreign keys hold the same
rules on both backends, should a row be deleted without the app's statements."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.clock import new_id, utcnow
from taskhub.db.runner import Database
from taskhub.tables import Comment, Project, ProjectMember, Task, User
from tests.helpers import API, ApiUser, assert_problem, create_task
from tests.projects.helpers import add_member, make_project

ME = f"{API}/users/me"


async def shared_project(client: httpx.AsyncClient, owner: ApiUser, member: ApiUser) -> str:
    """`owner`'s project with `member` as an editor."""
    project = await make_project(client, owner, name="Alice's")
    await add_member(client, owner, project["id"], member.username, "editor")
    project_id: str = project["id"]
    return project_id


async def delete_account(client: httpx.AsyncClient, user: ApiUser) -> None:
    response = await client.delete(ME, headers=user.headers)
    assert response.status_code == 204, response.text


async def read_task(client: httpx.AsyncClient, user: ApiUser, task_id: str) -> httpx.Response:
    response = await client.get(f"{API}/tasks/{task_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response


async def add_comment(app: FastAPI, *, task_id: str, author: ApiUser) -> uuid.UUID:
    """A comment row as the comment routes write it (they are built elsewhere)."""
    comment_id = new_id()
    now = utcnow()
    values = {
        "id": comment_id,
        "task_id": uuid.UUID(task_id),
        "author_id": uuid.UUID(author.id),
        "body": "looks good",
        "created_at": now,
        "updated_at": now,
    }
    await app.state.database.execute(sa.insert(Comment).values(values), {})
    return comment_id


async def count(app: FastAPI, statement: Any) -> int:
    return int(await app.state.database.scalar(statement, {}))


async def test_tasks_they_created_in_other_peoples_projects_stay_without_a_creator(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await shared_project(client, alice, bob)
    task = await create_task(client, bob, project_id=project_id, title="bob's idea")
    assert task["creator_id"] == bob.id
    etag_before = (await read_task(client, alice, task["id"])).headers["etag"]

    await delete_account(client, bob)

    after = await read_task(client, alice, task["id"])
    assert after.json()["creator_id"] is None
    assert after.json()["title"] == "bob's idea"
    assert after.headers["etag"] != etag_before


async def test_their_assignments_become_null(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await shared_project(client, alice, bob)
    task = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)
    etag_before = (await read_task(client, alice, task["id"])).headers["etag"]

    await delete_account(client, bob)

    after = await read_task(client, alice, task["id"])
    assert after.json()["assignee_id"] is None
    assert after.json()["creator_id"] == alice.id
    assert after.headers["etag"] != etag_before


async def test_their_comments_stay_without_an_author(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await shared_project(client, alice, bob)
    task = await create_task(client, alice, project_id=project_id)
    bobs = await add_comment(app, task_id=task["id"], author=bob)
    alices = await add_comment(app, task_id=task["id"], author=alice)

    await delete_account(client, bob)

    database: Database = app.state.database
    authors = await database.records(
        sa.select(Comment.id, Comment.author_id).order_by(Comment.created_at),
        {},
        lambda comment_id, author_id: (comment_id, author_id),
    )
    assert sorted(authors, key=str) == sorted(
        [(bobs, None), (alices, uuid.UUID(alice.id))], key=str
    )


async def test_their_personal_tasks_and_solo_projects_go_but_others_projects_stay(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project_id = await shared_project(client, alice, bob)
    kept = await create_task(client, bob, project_id=project_id)
    await create_task(client, bob, title="personal")
    solo = await make_project(client, bob, name="Solo")
    await create_task(client, bob, project_id=solo["id"])

    await delete_account(client, bob)

    assert await count(app, sa.select(sa.func.count()).select_from(Task)) == 1
    await read_task(client, alice, kept["id"])
    assert await count(app, sa.select(sa.func.count()).select_from(Project)) == 1
    members = await client.get(f"{API}/projects/{project_id}/members", headers=alice.headers)
    assert [m["username"] for m in members.json()["items"]] == ["alice"]


async def test_a_refused_deletion_changes_no_task(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    # Alice owns a project bob is in: 409, and her assignments and creations stay hers.
    project_id = await shared_project(client, alice, bob)
    task = await create_task(client, alice, project_id=project_id, assignee_id=alice.id)
    before = await read_task(client, bob, task["id"])

    refused = assert_problem(await client.delete(ME, headers=alice.headers), 409)
    assert "Alice's" in refused["detail"]

    after = await read_task(client, bob, task["id"])
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


async def test_the_foreign_keys_alone_hold_the_same_rules(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    # A user row deleted by hand (an operator, a script): the schema itself keeps project tasks,
    # nulls the assignee, the creator and the comment author, and drops what was the user's.
    project_id = await shared_project(client, alice, bob)
    created = await create_task(client, bob, project_id=project_id)
    assigned = await create_task(client, alice, project_id=project_id, assignee_id=bob.id)
    await create_task(client, bob, title="personal")
    comment = await add_comment(app, task_id=assigned["id"], author=bob)
    database: Database = app.state.database

    await database.execute(sa.delete(User).where(User.id == uuid.UUID(bob.id)), {})

    assert (await read_task(client, alice, created["id"])).json()["creator_id"] is None
    assert (await read_task(client, alice, assigned["id"])).json()["assignee_id"] is None
    author = await database.scalar(sa.select(Comment.author_id).where(Comment.id == comment), {})
    assert author is None
    assert await count(app, sa.select(sa.func.count()).select_from(Task)) == 2
    memberships = sa.select(sa.func.count()).where(ProjectMember.user_id == uuid.UUID(bob.id))
    assert await count(app, memberships) == 0


async def test_sqlite_connections_enforce_foreign_keys(app: FastAPI, is_postgres: bool) -> None:
    if is_postgres:
        pytest.skip("PostgreSQL always enforces foreign keys")
    database: Database = app.state.database
    pragma = sa.text("PRAGMA foreign_keys")
    assert await database.scalar(pragma, {}) == 1
    async with database.transaction() as tx:
        assert await tx.scalar(pragma, {}) == 1
