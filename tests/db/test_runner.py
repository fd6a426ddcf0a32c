"""The one data-access handle: single statements commit on their own, a transaction commits
whole or leaves nothing, constraint failures are IntegrityViolation, and every statement the
repositories define compiles on both backends."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

import taskhub
from taskhub.auth.models import User
from taskhub.clock import new_id
from taskhub.db.runner import Database, IntegrityViolation, selecting

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


@dataclass(frozen=True, slots=True)
class Named:
    username: str
    created_at: datetime


def _user(name: str) -> dict[str, object]:
    return {
        "id": new_id(),
        "username": name,
        "password_hash": "-" * 60,  # never checked: these users do not log in
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }


async def _count(database: Database, name: str) -> int:
    return int(await database.scalar(_COUNT_NAMED, {"name": name}))


async def test_a_single_write_is_committed_on_its_own_and_returns_a_typed_record(
    app: FastAPI,
) -> None:
    database: Database = app.state.database

    written = await database.record(_INSERT_USER, _user("single"), Named)

    assert written == Named("single", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert await _count(database, "single") == 1


async def test_a_transaction_commits_every_statement_when_the_block_ends(app: FastAPI) -> None:
    database: Database = app.state.database
    async with database.transaction() as tx:
        await tx.execute(_INSERT_USER, _user("first"))
        await tx.execute(_INSERT_USER, _user("second"))
    assert await _count(database, "first") + await _count(database, "second") == 2


async def test_a_failed_transaction_leaves_nothing_behind(app: FastAPI) -> None:
    database: Database = app.state.database
    with pytest.raises(RuntimeError):  # noqa: PT012 - the block is the transaction under test
        async with database.transaction() as tx:
            await tx.execute(_INSERT_USER, _user("half-done"))
            raise RuntimeError("the route failed after writing")
    assert await _count(database, "half-done") == 0


async def test_a_constraint_failure_is_an_integrity_violation_that_stores_nothing(
    app: FastAPI,
) -> None:
    database: Database = app.state.database
    await database.execute(_INSERT_USER, _user("taken"))
    with pytest.raises(IntegrityViolation):  # noqa: PT012 - the block is the transaction under test
        async with database.transaction() as tx:
            await tx.execute(_INSERT_USER, _user("other"))
            await tx.execute(_INSERT_USER, _user("taken"))
    assert await _count(database, "other") == 0


async def test_observers_see_each_statement_and_the_transaction_control(app: FastAPI) -> None:
    database: Database = app.state.database
    with database.observed() as sent:
        await _count(database, "nobody")
        async with database.transaction() as tx:
            await tx.execute(_INSERT_USER, _user("watched"))
    keywords = [sql.split(None, 1)[0].upper() for sql, _ in sent]
    assert keywords == ["SELECT", "BEGIN", "INSERT", "COMMIT"]


def test_a_record_whose_fields_do_not_match_the_columns_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="Named has fields"):
        selecting(Named, User.created_at, User.username)


def _module_statements() -> list[tuple[str, Executable]]:
    found = []
    for module_info in pkgutil.walk_packages(taskhub.__path__, "taskhub."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, Executable) and getattr(value, "is_dml", False) | getattr(
                value, "is_select", False
            ):
                found.append((f"{module_info.name}.{name}", value))
    return found


@pytest.mark.parametrize("dialect", [postgresql.psycopg.dialect(), sqlite.dialect()])
def test_every_module_level_statement_compiles_on_both_backends(dialect: object) -> None:
    """A statement that cannot compile (a reserved bind name, a backend-only construct) would
    otherwise only fail on the first request that sends it."""
    statements = _module_statements()
    assert len(statements) > 20
    for name, statement in statements:
        try:
            sql = str(statement.compile(dialect=dialect))  # type: ignore[attr-defined]
        except Exception as exc:
            pytest.fail(f"{name} does not compile: {exc}")
        # An expanding IN is rendered per execution; statements here are compiled once.
        assert "POSTCOMPILE" not in sql, name
