"""Hot-path statements and the ORM share one pool: each keeps its own transaction behaviour."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import bindparam, func, insert, select

from taskhub.db import Database, new_id
from taskhub.users.models import User

_COUNT_NAMED = select(func.count()).select_from(User).where(User.username == bindparam("name"))
_INSERT_USER = (
    insert(User)
    .values(
        id=bindparam("id"),
        username=bindparam("username"),
        password_hash=bindparam("password_hash"),
        created_at=bindparam("created_at"),
    )
    .returning(User.username, User.created_at)
)


def _user(name: str) -> dict[str, object]:
    return {
        "id": new_id(),
        "username": name,
        "password_hash": "-" * 60,  # never checked: these users do not log in
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }


async def _count(database: Database, name: str) -> int:
    rows = await database.statements.rows(_COUNT_NAMED, {"name": name})
    return int(rows[0][0])


async def test_a_hot_path_write_is_committed_on_its_own_and_returns_its_row(app: FastAPI) -> None:
    database: Database = app.state.database

    rows = await database.statements.rows(_INSERT_USER, _user("hotpath"))

    assert [tuple(row) for row in rows] == [("hotpath", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))]
    async with database.read_sessions() as session:
        found = await session.scalar(select(User.username).where(User.username == "hotpath"))
    assert found == "hotpath"


async def test_an_orm_session_after_hot_path_statements_still_rolls_back(app: FastAPI) -> None:
    """Pooled connections rest in autocommit for the hot path; the ORM must still get real
    transactions on them, or a rolled-back write would stay."""
    database: Database = app.state.database
    for _ in range(5):  # every pooled connection has served the hot path
        await _count(database, "nobody")

    async with database.sessions() as session:
        session.add(User(**_user("rolled-back")))
        await session.flush()
        await session.rollback()

    assert await _count(database, "rolled-back") == 0


async def test_a_failed_transaction_leaves_nothing_behind(app: FastAPI) -> None:
    database: Database = app.state.database
    try:
        async with database.transaction() as session:
            session.add(User(**_user("half-done")))
            await session.flush()
            raise RuntimeError("the route failed after writing")
    except RuntimeError:
        pass

    assert await _count(database, "half-done") == 0
