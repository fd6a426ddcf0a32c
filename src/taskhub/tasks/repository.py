"""Every query about tasks. Each one starts from the owner's scope: another user's task is not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, literal, or_, select, tuple_
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
    """One page in keyset order; ties broken by id in the sort's direction, missing due dates last."""
    column: InstrumentedAttribute[Any] = getattr(Task, order.column)
    query = select(Task).where(_owned(owner_id), *_filter_clauses(filters))
    if after is not None:
        query = query.where(_after(column, order, after))
    if order.descending:
        query = query.order_by(column.desc().nulls_last(), Task.id.desc())
    else:
        query = query.order_by(column.asc().nulls_last(), Task.id.asc())
    result = await db.execute(query.limit(limit))
    return list(result.scalars())


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


def _after(
    column: InstrumentedAttribute[Any], order: SortOrder, after: Position
) -> ColumnElement[bool]:
    def beyond(left: Any, right: Any) -> ColumnElement[bool]:
        return left < right if order.descending else left > right  # type: ignore[no-any-return]

    if after.key is None:  # the page ended among the tasks without a due date, which come last
        return and_(column.is_(None), beyond(Task.id, literal(after.task_id, type_=Task.id.type)))
    # Typed literals, so the key goes through the same conversion as the stored column.
    key = literal(after.key, type_=column.type)
    last_id = literal(after.task_id, type_=Task.id.type)
    later_key = beyond(tuple_(column, Task.id), tuple_(key, last_id))
    if order.nullable:
        return or_(and_(column.is_not(None), later_key), column.is_(None))
    return later_key


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
