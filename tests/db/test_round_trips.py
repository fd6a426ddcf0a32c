"""An authenticated read costs two statements: the auth check and its own query (no BEGIN/COMMIT).

Statements are counted where they leave the app: the one data-access handle (taskhub.db.runner).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from tests.helpers import API, ApiUser, create_task
from tests.projects.helpers import add_member, make_project


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The statements the app sends (transaction control included), by their first keyword."""
    with app.state.database.observed() as sent:
        keywords: list[str] = []
        yield keywords
        keywords.extend(sql.split(None, 1)[0].upper() for sql, _ in sent)


async def test_get_current_user_is_one_statement(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    with statements(app) as sent:
        assert (await client.get(f"{API}/users/me", headers=alice.headers)).status_code == 200
    assert sent == ["SELECT"]


async def test_list_and_get_tasks_are_two_statements_each(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    task = await create_task(client, alice, title="counted")
    for path in (f"{API}/tasks", f"{API}/tasks/{task['id']}", f"{API}/notifications"):
        with statements(app) as sent:
            assert (await client.get(path, headers=alice.headers)).status_code == 200
        assert sent == ["SELECT", "SELECT"], path


def one_create(is_postgres: bool) -> list[str]:
    """A create's write: one statement taking the scope's room and inserting the task on
    PostgreSQL (WITH ... UPDATE ... INSERT); two in a transaction on SQLite."""
    return ["WITH"] if is_postgres else ["BEGIN", "UPDATE", "INSERT", "COMMIT"]


async def test_a_plain_create_is_one_insert_without_a_transaction(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI, is_postgres: bool
) -> None:
    """After the scope's first create, which finds no room yet and counts its tasks (in the
    transaction that writes the task) to share out the room left."""
    with statements(app) as sent:
        await create_task(client, alice, title="counted")
    assert sent[:2] == ["SELECT", one_create(is_postgres)[0]]  # refused: no room yet
    assert sent[-2:] == ["INSERT", "COMMIT"]  # counted, in the transaction that writes
    with statements(app) as sent:
        await create_task(client, alice, title="written")
    assert sent == ["SELECT", *one_create(is_postgres)]


async def test_a_patch_is_one_update_without_a_transaction(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    task = await create_task(client, alice, title="written")
    with statements(app) as sent:
        response = await client.patch(
            f"{API}/tasks/{task['id']}",
            json={"title": "rewritten", "status": "done"},
            headers=alice.headers,
        )
    assert response.status_code == 200
    assert sent == ["SELECT", "UPDATE"]


async def test_a_keyed_create_is_one_transaction(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    await create_task(client, alice, title="counted")  # the scope's room, shared out
    with statements(app) as sent:
        response = await client.post(
            f"{API}/tasks",
            json={"title": "once"},
            headers={**alice.headers, "Idempotency-Key": "k1"},
        )
    assert response.status_code == 201
    assert sent[0] == "SELECT"  # the auth check, on its own
    assert (sent[1], sent[-1]) == ("BEGIN", "COMMIT")
    assert sent.count("INSERT") + sent.count("WITH") == 2  # the claim and the task


async def test_a_project_task_costs_the_round_trips_of_a_personal_one(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, app: FastAPI, is_postgres: bool
) -> None:
    """The membership check is in the statement that reads or writes the task: reading,
    listing, creating, changing and deleting a project task as a member cost what they cost for
    a personal task (the auth check and one statement)."""
    project = await make_project(client, alice)
    await add_member(client, alice, project["id"], bob.username, "editor")
    await create_task(client, bob, title="counted", project_id=project["id"])
    with statements(app) as sent:
        created = await client.post(
            f"{API}/tasks",
            json={"title": "shared", "project_id": project["id"]},
            headers=bob.headers,
        )
    assert created.status_code == 201
    assert sent == ["SELECT", *one_create(is_postgres)]
    url = f"{API}/tasks/{created.json()['id']}"
    for path in (f"{API}/tasks", url):
        with statements(app) as sent:
            assert (await client.get(path, headers=bob.headers)).status_code == 200
        assert sent == ["SELECT", "SELECT"], path
    with statements(app) as sent:
        patched = await client.patch(url, json={"title": "renamed"}, headers=alice.headers)
    assert patched.status_code == 200
    assert sent == ["SELECT", "UPDATE"]
    with statements(app) as sent:
        assert (await client.delete(url, headers=bob.headers)).status_code == 204
    assert sent == ["SELECT", "DELETE"]
