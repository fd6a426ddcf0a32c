"""Task rules: creation, partial update with completion tracking, owner-scoped reads, pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.db import utcnow
from taskhub.errors import NotFound
from taskhub.tasks import repository as task_repository
from taskhub.tasks.cursor import CursorCodec, listing_scope
from taskhub.tasks.models import Task, TaskStatus
from taskhub.tasks.repository import Position, SortOrder, TaskFilters
from taskhub.tasks.schemas import TaskCreate, TaskUpdate, priority_rank

TASK_NOT_FOUND = "Task not found"


@dataclass(frozen=True, slots=True)
class TaskPageResult:
    items: list[Task]
    next_cursor: str | None


def search_text(title: str, description: str | None) -> str:
    return f"{title.casefold()}\n{(description or '').casefold()}"


def parse_sort(sort: str) -> SortOrder:
    return SortOrder(column=sort.lstrip("-"), descending=sort.startswith("-"))


async def create_task(db: AsyncSession, *, owner_id: uuid.UUID, data: TaskCreate) -> Task:
    now = utcnow()
    task = Task(
        owner_id=owner_id,
        title=data.title,
        description=data.description,
        status=data.status.value,
        priority=priority_rank(data.priority),
        due_at=data.due_at,
        completed_at=now if data.status is TaskStatus.DONE else None,
        created_at=now,
        updated_at=now,
        search_text=search_text(data.title, data.description),
    )
    return await task_repository.add(db, task=task)


async def get_task(db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    task = await task_repository.get_owned(db, owner_id=owner_id, task_id=task_id)
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def update_task(
    db: AsyncSession, *, owner_id: uuid.UUID, task_id: uuid.UUID, changes: TaskUpdate
) -> Task:
    """Apply the fields the client sent; `completed_at` follows the status in and out of `done`."""
    task = await get_task(db, owner_id=owner_id, task_id=task_id)
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
    db: AsyncSession,
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
        db, owner_id=owner_id, filters=filters, order=order, after=after, limit=limit + 1
    )
    items = rows[:limit]
    if len(rows) <= limit:
        return TaskPageResult(items=items, next_cursor=None)
    last = items[-1]
    position = Position(key=getattr(last, order.column), task_id=last.id)
    return TaskPageResult(items=items, next_cursor=cursors.encode(position, scope=scope))
