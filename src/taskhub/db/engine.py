"""Builds the app's database handle from the settings: psycopg's pool on PostgreSQL, an
SQLAlchemy engine on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from taskhub.config import Settings
from taskhub.db.runner import Database, PostgresDatabase, SQLiteDatabase

# Connections older than this are replaced (RDS failovers, proxies that drop long-lived ones).
CONNECTION_MAX_LIFETIME_SECONDS = 1800
# Every PostgreSQL connection fails a connect fast (and reads timestamps in UTC, and runs each
# statement under DB_STATEMENT_TIMEOUT: postgres_connect_args).
CONNECT_TIMEOUT_SECONDS = 5
# A short-lived event loop (a Celery job) needs no more than this.
UNPOOLED_SIZE = 2


def create_database(settings: Settings, *, pooled: bool = True) -> Database:
    """`pooled=False` for short-lived event loops (Celery jobs): a small pool that the job closes
    when its loop ends, and nothing kept open between uses."""
    if settings.is_sqlite:
        return SQLiteDatabase(_create_sqlite_engine(settings, pooled=pooled))
    return PostgresDatabase(_create_pool(settings, pooled=pooled), _psycopg_dialect())


def _psycopg_dialect() -> Dialect:
    """The dialect statements are compiled with (the driver's own placeholders and casts)."""
    return create_async_engine("postgresql+psycopg://").dialect


def _create_pool(settings: Settings, *, pooled: bool) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """While the database is unreachable the pool keeps reconnecting in the background, so a
    short outage costs requests a wait (503 after DB_POOL_TIMEOUT) instead of an error."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    return AsyncConnectionPool(
        url.render_as_string(hide_password=False),
        kwargs={**postgres_connect_args(settings), "autocommit": True},
        min_size=1 if pooled else 0,
        max_size=settings.DB_POOL_SIZE if pooled else UNPOOLED_SIZE,
        max_idle=600 if pooled else 1,
        timeout=settings.DB_POOL_TIMEOUT,
        max_lifetime=CONNECTION_MAX_LIFETIME_SECONDS,
        open=False,
        name="taskhub",
    )


def postgres_connect_args(settings: Settings) -> dict[str, Any]:
    """libpq parameters of every connection: timestamps read in UTC, and no statement runs longer
    than DB_STATEMENT_TIMEOUT (PostgreSQL cancels it; the request gets a 503, taskhub.errors), so
    a statement stuck behind a lock or a runaway plan gives its connection back."""
    statement_timeout_ms = max(1, round(settings.DB_STATEMENT_TIMEOUT * 1000))
    return {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "options": f"-c timezone=UTC -c statement_timeout={statement_timeout_ms}",
    }


def _create_sqlite_engine(settings: Settings, *, pooled: bool) -> AsyncEngine:
    url = settings.database_url
    ensure_sqlite_folder(url)
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    # hide_parameters: a database error's text (logged with its traceback) never carries the
    # statement's values, such as a password hash.
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(connection: Connection) -> None:
    """A transaction takes SQLite's write lock at BEGIN, not at its first write: transactions
    run one after the other, so what one reads before it writes (a role, a count) is what its
    writes find. The driver's own BEGIN is deferred: two transactions could both read, then
    both write. Single statements (autocommit) take no lock beyond their own."""
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; cascading deletes need them.
    # WAL lets readers run while one writer commits.
    # The driver begins no transaction of its own: _begin_immediate says BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
