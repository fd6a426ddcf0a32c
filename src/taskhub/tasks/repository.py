"""Every query about tasks. Each one starts from the owner's scope: another user's task is not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from taskhub.db import insert_unless_duplicate
from taskhub.tasks.models import IdempotencyRecord, Task


@dataclass(frozen=True, slots=True)
class TaskFilters:
    statuses: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    search: str | None = None  # already case-folded


@dataclass(frozen=True, slots=True)
class SortOrder:
    column: str  # created_at, updated_at, priority or due_at
    descending: bool

    @property
    def nullable(self) -> bool:
        return self.column == "due_at"


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page ended: its last row's sort key and id."""

    key: Any
    task_id: uuid.UUID


def _owned(owner_id: uuid.UUID) -> ColumnElement[bool]:
    return Task.owner_id == owner_id


async def add(db: AsyncSession, *, task: Task) -> Task:
    db.add(task)
    await db.flush()
    return task


async def get_owned(db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> Task | None:
    result = await db.execute(select(Task).where(_owned(owner_id), Task.id == task_id))
    return result.scalar_one_or_none()


async def delete_owned(db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> bool:
    result = await db.execute(
        delete(Task).where(_owned(owner_id), Task.id == task_id).returning(Task.id)
    )
    return result.scalar_one_or_none() is not None


async def list_owned(
    db: AsyncSession,
    *,
    owner_id: uuid.UUID,
    filters: TaskFilters,
    order: SortOrder,
    after: Position | None,
    limit: int,
) -> list[Task]:
    """One page in keyset order; ties broken by id in the sort's direction, missing due dates last.

    Every query is a walk of an `(owner_id, <sort column>, id)` index in one direction, so a
    page costs the same however many tasks the owner has. Tasks without a due date are a second
    segment (`due_at IS NULL`, by id) read only when the first one runs out: a single
    `NULLS LAST` ordering would not match the index when descending, and PostgreSQL would sort.
    """
    column: InstrumentedAttribute[Any] = getattr(Task, order.column)
    base = select(Task).where(_owned(owner_id), *_filter_clauses(filters))
    rows: list[Task] = []
    if after is None or after.key is not None:
        keyed = base.where(column.is_not(None)) if order.nullable else base
        if after is not None:
            keyed = keyed.where(_beyond(order, tuple_(column, Task.id), _position(column, after)))
        rows = await _page(db, keyed.order_by(*_directed(order, column, Task.id)), limit)
    if order.nullable and len(rows) < limit:
        undated = base.where(column.is_(None))
        if after is not None and after.key is None:
            undated = undated.where(_beyond(order, Task.id, _typed_id(after.task_id)))
        rows += await _page(db, undated.order_by(*_directed(order, Task.id)), limit - len(rows))
    return rows


async def _page(db: AsyncSession, query: Select[Task], limit: int) -> list[Task]:
    return list((await db.execute(query.limit(limit))).scalars())


def _directed(order: SortOrder, *columns: Any) -> list[Any]:
    return [c.desc() if order.descending else c.asc() for c in columns]


def _beyond(order: SortOrder, left: Any, right: Any) -> ColumnElement[bool]:
    return left < right if order.descending else left > right  # type: ignore[no-any-return]


def _position(column: InstrumentedAttribute[Any], after: Position) -> Any:
    # Typed literals, so the key goes through the same conversion as the stored column.
    return tuple_(literal(after.key, type_=column.type), _typed_id(after.task_id))


def _typed_id(task_id: uuid.UUID) -> Any:
    return literal(task_id, type_=Task.id.type)


def _filter_clauses(filters: TaskFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.statuses:
        clauses.append(Task.status.in_(filters.statuses))
    if filters.priorities:
        clauses.append(Task.priority.in_(filters.priorities))
    if filters.due_after is not None:
        clauses.append(Task.due_at >= filters.due_after)
    if filters.due_before is not None:
        clauses.append(Task.due_at < filters.due_before)
    if filters.search:
        clauses.append(Task.search_text.like(f"%{_escape_like(filters.search)}%", escape="\\"))
    return clauses


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def find_idempotency_record(
    db: AsyncSession, *, user_id: uuid.UUID, key: str, now: datetime
) -> IdempotencyRecord | None:
    result = await db.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > now,
        )
    )
    return result.scalar_one_or_none()


async def claim_idempotency_key(
    db: AsyncSession, *, record: IdempotencyRecord, now: datetime
) -> bool:
    """Insert the record; False if another request holds the key (the primary key decides).

    On PostgreSQL a concurrent insert of the same key waits for the holder's transaction and
    then fails, so the loser can read the winner's committed response.
    """
    await db.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == record.user_id,
            IdempotencyRecord.key == record.key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    return await insert_unless_duplicate(db, record)


async def delete_expired_idempotency_records(db: AsyncSession, *, now: datetime) -> int:
    result = await db.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.expires_at <= now)
        .returning(IdempotencyRecord.key)
    )
    return len(result.all())
