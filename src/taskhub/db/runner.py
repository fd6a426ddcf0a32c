"""The one way to reach the database: SQLAlchemy Core statements, compiled once, run on one pool.

A statement is written once, as a module-level constant in its domain's repository. On
PostgreSQL it is compiled once per process and sent on a psycopg connection from the app's one
pool, a fraction of an ORM session's CPU (ADR 0011); on SQLite it goes through SQLAlchemy Core.
Either way the caller sees the same handle:

- `db.records(...)`, `db.record(...)`, `db.scalar(...)`, `db.count(...)`: one statement on its
  own, in autocommit (an INSERT/UPDATE ... RETURNING is atomic by itself);
- `async with db.transaction() as tx:` the same methods on one connection, committed when the
  block ends and rolled back if it raises: the service that needs atomicity says so.

One parameter is bound by the runner, not by the caller: `caller_reach`, the project restriction
of the personal access token the running request came with (taskhub.context), which the access
predicates every scoped statement starts from compare with (taskhub.access.scope). A statement
cannot be run with the caller's scope and without their token's restriction, whoever wrote it.

Rows come back as typed records: the record's fields name the columns (`selecting`,
`columns_of`), so no caller reads a tuple by position. Python-side column defaults of the models do not apply here
(they are the ORM's): every INSERT binds each column it writes.
"""

from __future__ import annotations

import dataclasses
import select
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar, cast

import psycopg
from psycopg import AsyncConnection, pq
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection as SAConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable

from taskhub.context import current_reach

Params = Mapping[str, Any]
# Bound from the running request, whatever the caller passed (see above).
REACH_PARAMETER = "caller_reach"
# Told of every statement a handle sends, as SQL text with its parameters (BEGIN, COMMIT and
# ROLLBACK included): round-trip tests and the bench's query plans watch the app through it.
Observer = Callable[[str, Params], None]
R = TypeVar("R")
# Statements are module-level or cached by shape, so this bound is never reached in practice; it
# only keeps a caller that builds statements per request from growing the cache forever.
MAX_COMPILED = 1024


class IntegrityViolation(Exception):
    """A constraint (foreign key, unique, check) refused a write; nothing of it was stored."""


def selecting(record: type[Any], *columns: Any) -> tuple[Any, ...]:
    """The columns to select into `record`, checked once, at import, to match its fields by name
    and order: a record is filled from its own column list, never by a position kept elsewhere."""
    names = [field.name for field in dataclasses.fields(record)]
    selected = [column.key for column in columns]
    if names != selected:
        raise TypeError(f"{record.__name__} has fields {names}, the statement selects {selected}")
    return columns


def columns_of(record: type[Any], *tables: Any, **named: Any) -> tuple[Any, ...]:
    """The columns to select into `record`, found by its fields' names: an expression given for
    the name (labelled with it), else the column of that name of the first of `tables` that has
    one. Adding a field to a record is then adding its column: the statement follows."""
    columns = []
    for field in dataclasses.fields(record):
        if field.name in named:
            columns.append(named[field.name].label(field.name))
            continue
        owner = next((table for table in tables if hasattr(table, field.name)), None)
        if owner is None:
            raise TypeError(f"{record.__name__}.{field.name} is no column of the tables given")
        columns.append(getattr(owner, field.name))
    return selecting(record, *columns)


class Queries(ABC):
    """What every handle offers; backends only say how one statement is sent."""

    observers: list[Observer]
    # The backend's name ("postgresql", "sqlite"), for the few statements written per backend.
    dialect: str

    def _note(self, sql: str, params: Params) -> None:
        for observer in self.observers:
            observer(sql, params)

    @abstractmethod
    async def _fetch(self, statement: Executable, params: Params) -> Sequence[Sequence[Any]]:
        """Run one statement and return its rows (none for a write without RETURNING)."""

    @abstractmethod
    async def _fetch_many(
        self, statement: Executable, params: Sequence[Params]
    ) -> Sequence[Sequence[Any]]:
        """Run one write for each parameter set, as one round trip where the driver can."""

    async def records(
        self, statement: Executable, params: Params, into: Callable[..., R]
    ) -> list[R]:
        return [into(*row) for row in await self._fetch(statement, params)]

    async def record(
        self, statement: Executable, params: Params, into: Callable[..., R]
    ) -> R | None:
        rows = await self._fetch(statement, params)
        return into(*rows[0]) if rows else None

    async def scalar(self, statement: Executable, params: Params) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = await self._fetch(statement, params)
        return rows[0][0] if rows else None

    async def execute(self, statement: Executable, params: Params) -> None:
        """Run one write whose rows nobody needs."""
        await self._fetch(statement, params)

    async def count(self, statement: Executable, params: Params) -> int:
        """How many rows a write with RETURNING touched."""
        return len(await self._fetch(statement, params))

    async def count_many(self, statement: Executable, params: Sequence[Params]) -> int:
        """How many rows one write with RETURNING touched over every parameter set."""
        if not params:
            return 0
        return len(await self._fetch_many(statement, params))


class Database(Queries):
    """The app's handle on its database: one pool, statements compiled once."""

    @contextmanager
    def observed(self) -> Iterator[list[tuple[str, Params]]]:
        """Every statement sent while the block runs, in order, with its parameters."""
        sent: list[tuple[str, Params]] = []

        def record(sql: str, params: Params) -> None:
            sent.append((sql, params))

        self.observers.append(record)
        try:
            yield sent
        finally:
            self.observers.remove(record)

    async def _fetch_many(
        self, statement: Executable, params: Sequence[Params]
    ) -> Sequence[Sequence[Any]]:
        # A batch commits whole: its statements share one connection and one transaction.
        async with self.transaction() as tx:
            return await tx._fetch_many(statement, params)

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """`async with db.transaction() as tx:` the same queries on one connection, atomically."""

    @abstractmethod
    def pool_stats(self) -> PoolStats | None: ...

    @abstractmethod
    async def dispose(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class PoolStats:
    in_use: int
    idle: int
    size: int


class _Compiler:
    """SQL text and default parameters of each statement, compiled once per statement."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[Executable, tuple[str, dict[str, Any]]] = {}

    def sql(self, statement: Executable) -> tuple[str, dict[str, Any]]:
        found = self._compiled.get(statement)
        if found is None:
            compiled = cast(ClauseElement, statement).compile(dialect=self._dialect)
            if "__[POSTCOMPILE_" in compiled.string:
                # An "expanding" IN is rendered per execution, which this runner never does.
                raise TypeError(f"an expanding IN cannot be compiled once: {compiled.string}")
            found = (compiled.string, dict(compiled.params))
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            self._compiled[statement] = found
        return found


def _returns_rows(cursor: psycopg.AsyncCursor[Any]) -> bool:
    """Whether the statement returned rows (a write without RETURNING does not). Read from the
    result's status: `cursor.description` would build a column object per column, every time."""
    result = cursor.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


class _PsycopgConnection(Queries):
    dialect = "postgresql"

    def __init__(
        self, connection: AsyncConnection[Any], compiler: _Compiler, observers: list[Observer]
    ) -> None:
        self._connection = connection
        self._compiler = compiler
        self.observers = observers

    async def _fetch(self, statement: Executable, params: Params) -> Sequence[Sequence[Any]]:
        sql, defaults = self._compiler.sql(statement)
        bound = {**defaults, **params}
        if REACH_PARAMETER in defaults:
            bound[REACH_PARAMETER] = current_reach()
        if self.observers:
            self._note(sql, bound)
        # custom_plan: sent unprepared, so PostgreSQL plans it for these values every time.
        prepare = False if statement.get_execution_options().get("custom_plan") else None
        try:
            cursor = await self._connection.execute(sql, bound, prepare=prepare)
        except psycopg.IntegrityError as exc:
            refused = type(exc).__name__
        else:
            return await cursor.fetchall() if _returns_rows(cursor) else []
        # Raised outside the handler: the driver's error (whose text can quote the row, a
        # password hash included) is not even attached as context.
        raise IntegrityViolation(refused)

    async def _fetch_many(
        self, statement: Executable, params: Sequence[Params]
    ) -> Sequence[Sequence[Any]]:
        sql, defaults = self._compiler.sql(statement)
        if self.observers:
            self._note(sql, {"executemany": len(params)})
        rows: list[Sequence[Any]] = []
        async with self._connection.cursor() as cursor:
            try:
                reach = {REACH_PARAMETER: current_reach()} if REACH_PARAMETER in defaults else {}
                bound = [{**defaults, **p, **reach} for p in params]
                await cursor.executemany(sql, bound, returning=True)
            except psycopg.IntegrityError as exc:
                refused = type(exc).__name__
            else:
                while True:
                    rows.extend(await cursor.fetchall())
                    if not cursor.nextset():
                        return rows
        raise IntegrityViolation(refused)


class PostgresDatabase(Database):
    """psycopg's pool: waiters are served first come, first served, and wait at most
    DB_POOL_TIMEOUT (then 503). Connections rest in autocommit: a single statement costs one
    round trip, and a transaction says BEGIN and COMMIT itself."""

    dialect = "postgresql"

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], dialect: Dialect) -> None:
        self.pool = pool
        self._compiler = _Compiler(dialect)
        self.observers = []

    async def _fetch(self, statement: Executable, params: Params) -> Sequence[Sequence[Any]]:
        async with self._connection() as connection:
            on_connection = _PsycopgConnection(connection, self._compiler, self.observers)
            return await on_connection._fetch(statement, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with (
            self._connection() as connection,
            _observed_transaction(self),
            connection.transaction(),
        ):
            yield _PsycopgConnection(connection, self._compiler, self.observers)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        if self.pool.closed:  # the pool must start inside the event loop that serves requests
            await self.pool.open(wait=False)
        connection = await self._live_connection()
        try:
            async with connection:
                yield connection
        finally:
            await self.pool.putconn(connection)

    async def _live_connection(self) -> AsyncConnection[Any]:
        """A pooled connection the server has not closed, within DB_POOL_TIMEOUT in all.

        After a restart or failover every idle connection in the pool is dead, and psycopg only
        learns it when a statement fails on one: each would cost a request a 503 although the
        server is back. The pool's own `check=` costs a round trip per checkout and, once a
        check fails, waits a second before the next one; this costs one poll(), a few microseconds."""
        deadline = time.monotonic() + self.pool.timeout
        while True:
            connection = await self.pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
            if not _closed_by_server(connection):
                return connection
            await connection.close()  # a closed connection is dropped and replaced by the pool
            await self.pool.putconn(connection)

    def pool_stats(self) -> PoolStats:
        stats = self.pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        return PoolStats(in_use=size - idle, idle=idle, size=self.pool.max_size)

    async def dispose(self) -> None:
        await self.pool.close()


class _SQLAlchemyConnection(Queries):
    dialect = "sqlite"

    def __init__(self, connection: SAConnection, observers: list[Observer]) -> None:
        self._connection = connection
        self.observers = observers

    async def _fetch(self, statement: Executable, params: Params) -> Sequence[Sequence[Any]]:
        params = _with_reach(statement, params, self._connection.dialect)
        if self.observers:
            self._note(str(statement), params)
        try:
            result = await self._connection.execute(statement, dict(params))
        except sa_exc.IntegrityError as exc:
            refused = type(exc.orig).__name__
        else:
            return [tuple(row) for row in result] if result.returns_rows else []
        raise IntegrityViolation(refused)

    async def _fetch_many(
        self, statement: Executable, params: Sequence[Params]
    ) -> Sequence[Sequence[Any]]:
        if self.observers:
            self._note(str(statement), {"executemany": len(params)})
        try:
            dialect = self._connection.dialect
            bound = [dict(_with_reach(statement, p, dialect)) for p in params]
            result = await self._connection.execute(statement, bound)
        except sa_exc.IntegrityError as exc:
            refused = type(exc.orig).__name__
        else:
            return [tuple(row) for row in result] if result.returns_rows else []
        raise IntegrityViolation(refused)


class SQLiteDatabase(Database):
    """The embedded default: the same statements through SQLAlchemy Core."""

    dialect = "sqlite"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.observers = []

    async def _fetch(self, statement: Executable, params: Params) -> Sequence[Sequence[Any]]:
        async with self._autocommit.connect() as connection:
            on_connection = _SQLAlchemyConnection(connection, self.observers)
            return await on_connection._fetch(statement, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with _observed_transaction(self), self.engine.begin() as connection:
            yield _SQLAlchemyConnection(connection, self.observers)

    def pool_stats(self) -> PoolStats | None:
        pool = self.engine.pool
        checkedout = getattr(pool, "checkedout", None)
        if checkedout is None:  # NullPool and friends keep nothing to count
            return None
        return PoolStats(
            in_use=checkedout(),
            idle=pool.checkedin(),  # type: ignore[attr-defined]
            size=pool.size(),  # type: ignore[attr-defined]
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


_TAKES_REACH: dict[Executable, bool] = {}


def _with_reach(statement: Executable, params: Params, dialect: Dialect) -> Params:
    """`params` with the request's reach bound, for a statement that takes it (SQLAlchemy Core
    path: the statement is compiled there, per execution, from its cached form)."""
    takes = _TAKES_REACH.get(statement)
    if takes is None:
        compiled = cast(ClauseElement, statement).compile(dialect=dialect)
        takes = REACH_PARAMETER in compiled.params
        if len(_TAKES_REACH) >= MAX_COMPILED:
            _TAKES_REACH.clear()
        _TAKES_REACH[statement] = takes
    return {**params, REACH_PARAMETER: current_reach()} if takes else params


def _closed_by_server(connection: AsyncConnection[Any]) -> bool:
    """Whether the server has said goodbye on an idle connection: nothing is ever sent to an idle
    client of ours (no LISTEN, no COPY), so anything to read is the termination notice of a
    shutdown, restart or failover, or the end of the stream."""
    if connection.closed:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


@asynccontextmanager
async def _observed_transaction(database: Database) -> AsyncIterator[None]:
    """BEGIN, then COMMIT or ROLLBACK, for the observers: each is a round trip of its own."""
    if database.observers:
        database._note("BEGIN", {})
    try:
        yield
    except BaseException:
        if database.observers:
            database._note("ROLLBACK", {})
        raise
    if database.observers:
        database._note("COMMIT", {})
