"""Hot-path statements: SQLAlchemy Core statements run without the ORM's per-call machinery.

The auth check, task reads and the plain task create run on every request that matters for
throughput. Through an ORM session one such query costs ~450 us of CPU here; compiled once and
sent on a psycopg connection from the app's pool it costs ~70 us (docs/benchmarks.md). The
statements stay SQLAlchemy Core, written once in each domain's repository; only how they are
sent differs by backend. Every statement is a single one in autocommit, so each is atomic on
its own and no transaction is ever left open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable

Row = Sequence[Any]
# Statements are module-level or cached by shape, so this bound is never reached in practice; it
# only keeps a caller that builds statements per request from growing the cache forever.
MAX_COMPILED = 1024


class StatementRunner(Protocol):
    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
        """Run one statement that returns rows (a SELECT, or a write with RETURNING) on its own,
        in autocommit, and return them."""
        ...


class PsycopgStatements:
    """PostgreSQL: SQL compiled once per statement, sent on a pooled connection in autocommit.

    psycopg prepares a statement on a connection after a few executions, so PostgreSQL stops
    parsing and planning it too.
    """

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._compiled: dict[Executable, tuple[str, dict[str, Any]]] = {}

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
        sql, defaults = self._sql(statement)
        await open_lazily(self._pool)
        async with self._pool.connection() as connection:  # in autocommit (taskhub.db)
            cursor = await connection.execute(sql, {**defaults, **params})
            return await cursor.fetchall()

    def _sql(self, statement: Executable) -> tuple[str, dict[str, Any]]:
        found = self._compiled.get(statement)
        if found is None:
            compiled = cast(ClauseElement, statement).compile(dialect=self._dialect)
            found = (compiled.string, dict(compiled.params))
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            self._compiled[statement] = found
        return found


async def open_lazily(pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
    """Open on first use: the pool must start inside the event loop that serves requests."""
    if pool.closed:
        await pool.open(wait=False)


class SQLAlchemyStatements:
    """Any other backend (SQLite): the same statements through SQLAlchemy Core."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
        async with self._engine.connect() as connection:
            result = await connection.execute(statement, dict(params))
            return [tuple(row) for row in result]
