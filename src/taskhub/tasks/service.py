"""Task rules: creation, partial update with completion tracking, owner-scoped reads, pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.db import new_id, utcnow
from taskhub.errors import Conflict, NotFound, ValidationFailed
from taskhub.statements import Row, StatementRunner
from taskhub.tasks import repository as task_repository
from taskhub.tasks.cursor import CursorCodec, listing_scope
from taskhub.tasks.models import (
    SEARCH_SEPARATOR,
    IdempotencyRecord,
    Task,
    TaskPriority,
    TaskStatus,
)
from taskhub.tasks.repository import Position, SortOrder, TaskFilters
from taskhub.tasks.schemas import TaskCreate, TaskRead, TaskUpdate, priority_rank

TASK_NOT_FOUND = "Task not found"
_COLUMN_INDEX = {name: index for index, name in enumerate(task_repository.READ_NAMES)}
IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEY_REUSED = "was already used with a different request body"


@dataclass(frozen=True, slots=True)
class TaskPageResult:
    items: list[Row]  # READ_COLUMNS
    next_cursor: str | None


_PRIORITY_NAMES = {rank.value: rank.name.lower() for rank in TaskPriority}


def task_body(row: Row) -> dict[str, Any]:
    """TaskRead's JSON shape from a row of READ_COLUMNS, without a model in between."""
    body = dict(zip(task_repository.READ_NAMES, row, strict=True))
    body["priority"] = _PRIORITY_NAMES[body["priority"]]
    return body


def search_text(title: str, description: str | None) -> str:
    return f"{title.casefold()}{SEARCH_SEPARATOR}{(description or '').casefold()}"


def parse_sort(sort: str) -> SortOrder:
    return SortOrder(column=sort.lstrip("-"), descending=sort.startswith("-"))


def _new_task(owner_id: uuid.UUID, data: TaskCreate) -> dict[str, Any]:
    """Every column of a new task."""
    now = utcnow()
    return {
        "id": new_id(),
        "owner_id": owner_id,
        "title": data.title,
        "description": data.description,
        "status": data.status.value,
        "priority": priority_rank(data.priority),
        "due_at": data.due_at,
        "completed_at": now if data.status is TaskStatus.DONE else None,
        "created_at": now,
        "updated_at": now,
        "search_text": search_text(data.title, data.description),
    }


async def create_task(statements: StatementRunner, *, owner_id: uuid.UUID, data: TaskCreate) -> Row:
    """One INSERT ... RETURNING in autocommit: the create is atomic without a transaction."""
    return await task_repository.insert_row(statements, values=_new_task(owner_id, data))


async def get_task(statements: StatementRunner, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> Row:
    row = await task_repository.find_owned_row(statements, owner_id=owner_id, task_id=task_id)
    if row is None:
        raise NotFound(TASK_NOT_FOUND)
    return row


async def _owned_task(db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    task = await task_repository.get_owned(db, owner_id=owner_id, task_id=task_id)
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def update_task(
    db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID, changes: TaskUpdate
) -> Task:
    """Apply the fields the client sent; `completed_at` follows the status in and out of `done`."""
    task = await _owned_task(db, owner_id=owner_id, task_id=task_id)
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if not values:
        return task
    now = utcnow()
    if "priority" in values:
        values["priority"] = priority_rank(values["priority"])
    if "status" in values:
        values["status"] = TaskStatus(values["status"]).value
        _track_completion(task, new_status=values["status"], now=now)
    for name, value in values.items():
        setattr(task, name, value)
    task.search_text = search_text(task.title, task.description)
    task.updated_at = now
    await db.flush()
    return task


def _track_completion(task: Task, *, new_status: str, now: datetime) -> None:
    if new_status == TaskStatus.DONE and task.status != TaskStatus.DONE:
        task.completed_at = now
    elif new_status != TaskStatus.DONE:
        task.completed_at = None


async def delete_task(db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> None:
    if not await task_repository.delete_owned(db, owner_id=owner_id, task_id=task_id):
        raise NotFound(TASK_NOT_FOUND)


async def list_tasks(
    statements: StatementRunner,
    *,
    owner_id: uuid.UUID,
    filters: TaskFilters,
    sort: str,
    limit: int,
    cursor: str | None,
    cursors: CursorCodec,
) -> TaskPageResult:
    """One page, and the cursor of the next one when there is more."""
    order = parse_sort(sort)
    scope = listing_scope(owner_id=owner_id, order=order, filters=filters)
    after = cursors.decode(cursor, scope=scope, order=order) if cursor is not None else None
    rows = await task_repository.list_owned(
        statements, owner_id=owner_id, filters=filters, order=order, after=after, limit=limit + 1
    )
    items = rows[:limit]
    if len(rows) <= limit:
        return TaskPageResult(items=items, next_cursor=None)
    last = items[-1]
    position = Position(key=last[_COLUMN_INDEX[order.column]], task_id=last[0])
    return TaskPageResult(items=items, next_cursor=cursors.encode(position, scope=scope))


@dataclass(frozen=True, slots=True)
class CreatedTask:
    """The 201 body of a create, fresh or replayed from an earlier request with the same key."""

    body: dict[str, Any]
    task_id: uuid.UUID


def _created(task: Task) -> CreatedTask:
    return CreatedTask(body=TaskRead.model_validate(task).model_dump(mode="json"), task_id=task.id)


async def _add_task(db: AsyncSession, *, owner_id: uuid.UUID, data: TaskCreate) -> Task:
    return await task_repository.add(db, task=Task(**_new_task(owner_id, data)))


async def create_task_once(
    db: AsyncSession, *, owner_id: uuid.UUID, key: str, request_hash: str, data: TaskCreate
) -> CreatedTask:
    """Create a task at most once per (owner, Idempotency-Key) within 24 hours.

    A retry with the same body gets the first response again, even if the task has changed or
    gone since; the same key with another body is 422.
    """
    now = utcnow()
    record = await task_repository.find_idempotency_record(db, user_id=owner_id, key=key, now=now)
    if record is None:
        claim = IdempotencyRecord(
            user_id=owner_id,
            key=key,
            request_hash=request_hash,
            created_at=now,
            expires_at=now + IDEMPOTENCY_WINDOW,
        )
        if await task_repository.claim_idempotency_key(db, record=claim, now=now):
            created = _created(await _add_task(db, owner_id=owner_id, data=data))
            claim.response_body = orjson.dumps(created.body).decode()
            claim.resource_id = created.task_id
            await db.flush()
            return created
        record = await task_repository.find_idempotency_record(
            db, user_id=owner_id, key=key, now=now
        )
        if record is None:  # the other request failed and rolled back: ask the client to retry
            raise Conflict("A request with this Idempotency-Key is still in progress; retry")
    if record.request_hash != request_hash:
        raise ValidationFailed(loc=["header", "Idempotency-Key"], msg=KEY_REUSED)
    if record.resource_id is None:
        raise Conflict("A request with this Idempotency-Key is still in progress; retry")
    return CreatedTask(body=orjson.loads(record.response_body), task_id=record.resource_id)


async def purge_expired_idempotency_records(db: AsyncSession, *, now: datetime) -> int:
    return await task_repository.delete_expired_idempotency_records(db, now=now)
