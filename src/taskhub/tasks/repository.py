"""Every query about tasks. Each one starts from the owner's scope: another user's task is not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Executable, bindparam, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from taskhub.db import insert_unless_duplicate
from taskhub.statements import Row, StatementRunner
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


# What a client sees of a task, in TaskRead's order: the hot paths read these as plain rows.
READ_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.due_at,
    Task.completed_at,
    Task.created_at,
    Task.updated_at,
)
READ_NAMES = tuple(column.key for column in READ_COLUMNS)
_WRITTEN_ON_CREATE = (*READ_COLUMNS, Task.owner_id, Task.search_text)

_OWNED_ROW = select(*READ_COLUMNS).where(
    Task.owner_id == bindparam("owner_id"), Task.id == bindparam("task_id")
)
_INSERT_ROW = (
    insert(Task)
    .values({column.key: bindparam(column.key) for column in _WRITTEN_ON_CREATE})
    .returning(*READ_COLUMNS)
)


async def find_owned_row(
    statements: StatementRunner, *, owner_id: uuid.UUID, task_id: uuid.UUID
) -> Row | None:
    rows = await statements.rows(_OWNED_ROW, {"owner_id": owner_id, "task_id": task_id})
    return rows[0] if rows else None


async def insert_row(statements: StatementRunner, *, values: dict[str, Any]) -> Row:
    """Insert one task (every written column given) and return it as READ_COLUMNS."""
    return (await statements.rows(_INSERT_ROW, values))[0]


@dataclass(frozen=True, slots=True)
class _PageShape:
    """What decides a page query's SQL; the values themselves are parameters."""

    order: SortOrder
    undated: bool  # the second segment of a due_at listing: tasks without a due date
    after: bool
    statuses: int
    priorities: int
    due_after: bool
    due_before: bool
    search: bool


async def list_owned(
    statements: StatementRunner,
    *,
    owner_id: uuid.UUID,
    filters: TaskFilters,
    order: SortOrder,
    after: Position | None,
    limit: int,
) -> list[Row]:
    """One page in keyset order; ties broken by id in the sort's direction, missing due dates last.

    Every query is a walk of an `(owner_id, <sort column>, id)` index in one direction, so a
    page costs the same however many tasks the owner has. Tasks without a due date are a second
    segment (`due_at IS NULL`, by id) read only when the first one runs out: a single
    `NULLS LAST` ordering would not match the index when descending, and PostgreSQL would sort.
    """
    params = _page_params(owner_id, filters)
    rows: list[Row] = []
    if after is None or after.key is not None:
        keyed = {**params, "limit": limit}
        if after is not None:
            keyed.update(after_key=after.key, after_id=after.task_id)
        rows = await statements.rows(_page_statement(_shape(order, filters, after, False)), keyed)
    if order.nullable and len(rows) < limit:
        undated = {**params, "limit": limit - len(rows)}
        if after is not None and after.key is None:
            undated["after_id"] = after.task_id
        shape = _shape(order, filters, after if after and after.key is None else None, True)
        rows += await statements.rows(_page_statement(shape), undated)
    return rows


def _shape(
    order: SortOrder, filters: TaskFilters, after: Position | None, undated: bool
) -> _PageShape:
    return _PageShape(
        order=order,
        undated=undated,
        after=after is not None,
        statuses=len(filters.statuses),
        priorities=len(filters.priorities),
        due_after=filters.due_after is not None,
        due_before=filters.due_before is not None,
        search=bool(filters.search),
    )


def _page_params(owner_id: uuid.UUID, filters: TaskFilters) -> dict[str, Any]:
    params: dict[str, Any] = {"owner_id": owner_id}
    params.update({f"status_{i}": value for i, value in enumerate(filters.statuses)})
    params.update({f"priority_{i}": value for i, value in enumerate(filters.priorities)})
    if filters.due_after is not None:
        params["due_after"] = filters.due_after
    if filters.due_before is not None:
        params["due_before"] = filters.due_before
    if filters.search:
        params["search"] = f"%{_escape_like(filters.search)}%"
    return params


@lru_cache(maxsize=512)
def _page_statement(shape: _PageShape) -> Executable:
    """Built once per shape, so the statement runner compiles it once too."""
    order = shape.order
    column: InstrumentedAttribute[Any] = getattr(Task, order.column)
    query = select(*READ_COLUMNS).where(
        Task.owner_id == bindparam("owner_id"), *_filter_clauses(shape)
    )
    if shape.undated:
        query = query.where(column.is_(None))
        if shape.after:
            query = query.where(_beyond(order, Task.id, bindparam("after_id", type_=Task.id.type)))
        sort_by = _directed(order, Task.id)
    else:
        if order.nullable:
            query = query.where(column.is_not(None))
        if shape.after:
            position = tuple_(
                bindparam("after_key", type_=column.type), bindparam("after_id", type_=Task.id.type)
            )
            query = query.where(_beyond(order, tuple_(column, Task.id), position))
        sort_by = _directed(order, column, Task.id)
    return query.order_by(*sort_by).limit(bindparam("limit"))


def _directed(order: SortOrder, *columns: Any) -> list[Any]:
    return [c.desc() if order.descending else c.asc() for c in columns]


def _beyond(order: SortOrder, left: Any, right: Any) -> ColumnElement[bool]:
    return left < right if order.descending else left > right  # type: ignore[no-any-return]


def _filter_clauses(shape: _PageShape) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if shape.statuses:
        clauses.append(Task.status.in_([bindparam(f"status_{i}") for i in range(shape.statuses)]))
    if shape.priorities:
        ranks: list[Any] = [bindparam(f"priority_{i}") for i in range(shape.priorities)]
        clauses.append(Task.priority.in_(ranks))
    if shape.due_after:
        clauses.append(Task.due_at >= bindparam("due_after"))
    if shape.due_before:
        clauses.append(Task.due_at < bindparam("due_before"))
    if shape.search:
        clauses.append(Task.search_text.like(bindparam("search"), escape="\\"))
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
