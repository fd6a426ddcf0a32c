"""An authenticated read costs two statements: the auth check and its own query (no BEGIN/COMMIT).

Statements are counted where they leave the app: the hot-path runner (taskhub.statements) and
SQLAlchemy's engine for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.helpers import API, ApiUser, create_task


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL the app sends (transaction control included), by its first keyword."""
    sent: list[str] = []
    engine = app.state.database.engine.sync_engine
    runner = app.state.database.statements
    run_statement = runner.rows
    in_runner = False

    async def rows(statement: Any, params: Any) -> Any:
        nonlocal in_runner
        sent.append(str(statement).split(None, 1)[0].upper())
        in_runner = True  # on SQLite the runner goes through the engine: count it once
        try:
            return await run_statement(statement, params)
        finally:
            in_runner = False

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not in_runner:
            sent.append(statement.split(None, 1)[0].upper())

    def record_commit(_conn: Any) -> None:
        if _conn.get_isolation_level() != "AUTOCOMMIT":
            sent.append("COMMIT")

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", record_commit)
    runner.rows = rows
    try:
        yield sent
    finally:
        del runner.rows
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "commit", record_commit)


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


async def test_a_plain_create_is_one_insert_without_a_transaction(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    with statements(app) as sent:
        await create_task(client, alice, title="written")
    assert sent == ["SELECT", "INSERT"]


async def test_a_write_commits_once(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    task = await create_task(client, alice, title="written")
    with statements(app) as sent:
        response = await client.patch(
            f"{API}/tasks/{task['id']}", json={"status": "done"}, headers=alice.headers
        )
    assert response.status_code == 200
    assert sent.count("COMMIT") == 1
    assert sent.count("UPDATE") == 1
