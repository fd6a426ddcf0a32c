"""The one data-access handle: single statements commit on their own, a transaction commits
whole or leaves nothing, constraint failures are IntegrityViolation, and every statement the
repositories define compiles on both backends."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

import taskhub
from taskhub.clock import new_id
from taskhub.db.engine import create_database
from taskhub.db.runner import Database, IntegrityViolation, selecting
from taskhub.tables import User
from tests.conftest import make_settings

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


_BACKEND_AFTER_A_NAP = select(func.pg_backend_pid(), func.pg_sleep(0.2))
_BACKEND = select(func.pg_backend_pid())


async def test_pooled_connections_the_server_ended_are_replaced_before_a_statement_runs(
    database_url: str, is_postgres: bool
) -> None:
    # What a restart or failover does to every idle connection of the pool, done here to ours
    # alone: pg_terminate_backend sends each its goodbye and closes it.
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite connections are files, not sessions a server ends")
    database = create_database(make_settings(database_url, DB_POOL_SIZE=4))
    try:
        naps = [database.scalar(_BACKEND_AFTER_A_NAP, {}) for _ in range(4)]
        ended = set(await asyncio.gather(*naps))
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            for pid in ended:
                await admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(100):  # up to ~5 s for the backends to be gone
                cursor = await admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(ended)]
                )
                if (await cursor.fetchone()) == (0,):
                    break
                await asyncio.sleep(0.05)

        served_by = [await database.scalar(_BACKEND, {}) for _ in range(len(ended) + 1)]
    finally:
        await database.dispose()

    assert not ended & set(served_by)


async def test_a_statement_marked_custom_plan_is_planned_for_its_values_every_time(
    app: FastAPI, is_postgres: bool
) -> None:
    """psycopg prepares a statement from its 6th execution, and PostgreSQL may then run a generic
    plan blind to the values (the `label=` filter's plan went from 0.1 ms to 20 ms). A statement
    marked `custom_plan` is never prepared; others still are."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite has no prepared plans to choose between")
    database: Database = app.state.database
    word = bindparam("word", type_=User.username.type)
    marked = select(func.lower(word)).execution_options(custom_plan=True)
    plain = select(func.upper(word))
    held = text("SELECT statement FROM pg_prepared_statements")
    async with database.transaction() as tx:  # one connection: its prepared statements are read
        for _ in range(10):
            await tx.scalar(marked, {"word": "x"})
            await tx.scalar(plain, {"word": "x"})
        prepared = " ".join(await tx.records(held, {}, str)).lower()
    assert "upper(" in prepared, "the plain statement was never prepared: nothing is shown"
    assert "lower(" not in prepared
