"""An authenticated read costs two statements: the auth check and its own query (no BEGIN/COMMIT)."""

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
    """The SQL the app sends, as the driver receives it (transaction control included)."""
    sent: list[str] = []
    engine = app.state.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    def record_commit(_conn: Any) -> None:
        if _conn.get_isolation_level() != "AUTOCOMMIT":
            sent.append("COMMIT")

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", record_commit)
    try:
        yield sent
    finally:
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


async def test_a_write_commits_once(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    with statements(app) as sent:
        await create_task(client, alice, title="written")
    assert sent.count("COMMIT") == 1
    assert sent.count("INSERT") == 1
