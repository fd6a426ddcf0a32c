"""Database engine, the declarative base and the per-request session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.types import TypeDecorator

from taskhub.config import Settings
from taskhub.statements import (
    PsycopgStatements,
    SQLAlchemyStatements,
    StatementRunner,
    open_lazily,
)

# Connections older than this are replaced (RDS failovers, proxies that drop long-lived ones).
CONNECTION_MAX_LIFETIME_SECONDS = 1800
# Every PostgreSQL connection, pooled or not: fail a connect fast, and read timestamps in UTC.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {"connect_timeout": 5, "options": "-c timezone=UTC"}

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored with time zone and always handed back as an aware UTC datetime.

    SQLite keeps no offset, so values are normalised to UTC on the way in and
    tagged as UTC on the way out; PostgreSQL stores `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


@dataclass(frozen=True, slots=True)
class PoolStats:
    in_use: int
    idle: int
    size: int


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Autocommit sessions for requests that only read: no BEGIN and COMMIT round trips.
    read_sessions: async_sessionmaker[AsyncSession]
    # Single statements on the hot paths (auth check, task reads, plain create), without the ORM.
    statements: StatementRunner
    # PostgreSQL: the one pool under both the ORM engine and `statements`.
    pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None

    def pool_stats(self) -> PoolStats | None:
        if self.pool is not None:
            stats = self.pool.get_stats()
            size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
            return PoolStats(in_use=size - idle, idle=idle, size=self.pool.max_size)
        pool = self.engine.pool
        if isinstance(pool, QueuePool):  # NullPool and friends keep nothing to count
            return PoolStats(in_use=pool.checkedout(), idle=pool.checkedin(), size=pool.size())
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits once when the block succeeds and rolls back otherwise."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.pool is not None:
            await self.pool.close()


def create_database(settings: Settings, *, pooled: bool = True) -> Database:
    """`pooled=False` for short-lived event loops (Celery jobs): no connection outlives its use."""
    pool = _create_pool(settings) if pooled and not settings.is_sqlite else None
    if pool is not None:
        engine = _create_engine_on(pool)
        statements: StatementRunner = PsycopgStatements(pool, engine.dialect)
    else:
        engine = _create_sqlite_engine(settings) if pooled else _create_unpooled_engine(settings)
        statements = SQLAlchemyStatements(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    read_sessions = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )
    return Database(
        engine=engine,
        sessions=sessions,
        read_sessions=read_sessions,
        statements=statements,
        pool=pool,
    )


def _create_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """psycopg's pool: waiters are served first come, first served, and wait at most
    DB_POOL_TIMEOUT (then 503). While the database is unreachable the pool keeps reconnecting
    in the background, so a short outage costs requests a wait instead of an error.

    """
    url = make_url(settings.database_url).set(drivername="postgresql")
    return AsyncConnectionPool(
        url.render_as_string(hide_password=False),
        kwargs={**POSTGRES_CONNECT_ARGS, "autocommit": True},
        min_size=1,
        max_size=settings.DB_POOL_SIZE,
        timeout=settings.DB_POOL_TIMEOUT,
        max_lifetime=CONNECTION_MAX_LIFETIME_SECONDS,
        reset=_back_to_autocommit,
        close_returns=True,
        open=False,
        name="taskhub",
    )


async def _back_to_autocommit(connection: AsyncConnection[Any]) -> None:
    # Connections rest in autocommit, as the hot-path statements run; the ORM's engine turns it
    # off when it borrows one. No switching on the hot path: each switch is a wait in psycopg.
    if not connection.autocommit:
        await connection.set_autocommit(True)


def _create_engine_on(pool: AsyncConnectionPool[AsyncConnection[Any]]) -> AsyncEngine:
    """SQLAlchemy on psycopg's pool: NullPool "closes" a connection by handing it back to it."""

    async def borrow() -> AsyncConnection[Any]:
        await open_lazily(pool)
        connection = await pool.getconn()
        # SQLAlchemy expects a DBAPI connection that opens transactions; it switches to
        # autocommit itself for the read-only sessions.
        await connection.set_autocommit(False)
        return connection

    # hide_parameters: a database error's text (logged with its traceback) never carries the
    # statement's values, such as a password hash.
    return create_async_engine(
        "postgresql+psycopg://", poolclass=NullPool, async_creator=borrow, hide_parameters=True
    )


def _create_sqlite_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    ensure_sqlite_folder(url)
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _create_unpooled_engine(settings: Settings) -> AsyncEngine:
    connect_args = {"timeout": 30} if settings.is_sqlite else POSTGRES_CONNECT_ARGS
    engine = create_async_engine(
        settings.database_url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True
    )
    if settings.is_sqlite:
        ensure_sqlite_folder(settings.database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; cascading deletes need them.
    # WAL lets readers run while one writer commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def insert_unless_duplicate(db: AsyncSession, row: Base) -> bool:
    """Insert a row; False when a unique constraint already holds its key.

    The database decides, so two concurrent inserts of one key never both succeed; the savepoint
    keeps the caller's transaction usable after the conflict.
    """
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:
        return False
    return True
