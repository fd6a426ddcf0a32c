"""Task rules: creation (idempotent with a key), whole-PATCH updates with completion tracking,
owner-scoped reads and keyset pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from taskhub import pagination
from taskhub.clock import new_id, utcnow
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, NotFound, ValidationFailed
from taskhub.pagination import KeysetCursors, Page, Position
from taskhub.tasks import repository as task_repository
from taskhub.tasks.models import SEARCH_SEPARATOR, TaskPriority, TaskStatus
from taskhub.tasks.repository import SortOrder, TaskChanges, TaskFilters, TaskRecord
from taskhub.tasks.schemas import TaskCreate, TaskUpdate, priority_rank, render_task

TASK_NOT_FOUND = "Task not found"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEY_REUSED = "was already used with a different request body"
STILL_IN_PROGRESS = "A request with this Idempotency-Key is still in progress; retry"
_PRIORITY_RANKS = frozenset(rank.value for rank in TaskPriority)


def search_part(text: str | None) -> str:
    """One half of `search_text`: case-folded, and never holding the separator itself, so the
    first separator always splits title from description (a PATCH of one keeps the other)."""
    return (text or "").casefold().replace(SEARCH_SEPARATOR, " ")


def search_text(title: str, description: str | None) -> str:
    return f"{search_part(title)}{SEARCH_SEPARATOR}{search_part(description)}"


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


async def create_task(db: Queries, *, owner_id: uuid.UUID, data: TaskCreate) -> TaskRecord:
    """One INSERT ... RETURNING in autocommit: the create is atomic without a transaction."""
    return await task_repository.insert_task(db, values=_new_task(owner_id, data))


async def get_task(db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> TaskRecord:
    task = await task_repository.get_owned(db, owner_id=owner_id, task_id=task_id)
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def update_task(
    db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID, changes: TaskUpdate
) -> TaskRecord:
    """Apply the fields the client sent, whole; `completed_at` follows the status in and out of
    `done`. An empty PATCH changes nothing, not even `updated_at`."""
    sent = changes.model_fields_set
    if not sent:
        return await get_task(db, owner_id=owner_id, task_id=task_id)
    values: dict[str, Any] = {name: getattr(changes, name) for name in sent}
    if "priority" in values:
        values["priority"] = priority_rank(values["priority"])
    if "status" in values:
        values["status"] = TaskStatus(values["status"]).value
    task = await task_repository.update_owned(
        db,
        owner_id=owner_id,
        task_id=task_id,
        changes=TaskChanges(
            sent=frozenset(sent),
            values=values,
            title_search=search_part(values["title"]) if "title" in sent else None,
            description_search=(
                search_part(values["description"]) if "description" in sent else None
            ),
        ),
        now=utcnow(),
    )
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def delete_task(db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> None:
    if not await task_repository.delete_owned(db, owner_id=owner_id, task_id=task_id):
        raise NotFound(TASK_NOT_FOUND)


async def list_tasks(
    db: Queries,
    *,
    owner_id: uuid.UUID,
    filters: TaskFilters,
    sort: str,
    limit: int,
    cursor: str | None,
    cursors: KeysetCursors,
) -> Page[TaskRecord]:
    """One page, and the cursor of the next one when there is more."""
    order = parse_sort(sort)
    return await cursors.fetch_page(
        cursor=cursor,
        scope=listing_scope(owner_id=owner_id, order=order, filters=filters),
        parse_key=_key_parser(order),
        limit=limit,
        fetch=lambda after, count: task_repository.list_owned(
            db, owner_id=owner_id, filters=filters, order=order, after=after, limit=count
        ),
        position_of=lambda task: Position(key=getattr(task, order.column), last_id=task.id),
    )


def _key_parser(order: SortOrder) -> pagination.KeyParser:
    if order.column == "priority":
        return pagination.rank_key(_PRIORITY_RANKS)
    return pagination.timestamp_key(nullable=order.nullable)


def listing_scope(*, owner_id: uuid.UUID, order: SortOrder, filters: TaskFilters) -> str:
    """Everything that defines the listing; a cursor only fits the listing it came from."""
    return pagination.listing_scope(
        {
            "owner": str(owner_id),
            "sort": [order.column, order.descending],
            "status": sorted(filters.statuses),
            "priority": sorted(filters.priorities),
            "due_before": pagination.instant(filters.due_before),
            "due_after": pagination.instant(filters.due_after),
            "q": filters.search,
        }
    )


@dataclass(frozen=True, slots=True)
class CreatedTask:
    """The 201 body of a create, fresh or replayed from an earlier request with the same key."""

    body: dict[str, Any]
    task_id: uuid.UUID


async def create_task_once(
    db: Database, *, owner_id: uuid.UUID, key: str, request_hash: str, data: TaskCreate
) -> CreatedTask:
    """Create a task at most once per (owner, Idempotency-Key) within 24 hours.

    A retry with the same body gets the first response again, even if the task has changed or
    gone since; the same key with another body is 422. The claim, the task and the recorded
    response commit together, before the 201 is sent.
    """
    now = utcnow()
    async with db.transaction() as tx:
        found = await task_repository.find_response(tx, user_id=owner_id, key=key, now=now)
        if found is None:
            claimed = await task_repository.claim_key(
                tx,
                user_id=owner_id,
                key=key,
                request_hash=request_hash,
                now=now,
                expires_at=now + IDEMPOTENCY_WINDOW,
            )
            if claimed:
                task = await create_task(tx, owner_id=owner_id, data=data)
                body = render_task(task)
                await task_repository.record_response(
                    tx,
                    user_id=owner_id,
                    key=key,
                    body=orjson.dumps(body, option=orjson.OPT_UTC_Z).decode(),
                    resource_id=task.id,
                )
                return CreatedTask(body=body, task_id=task.id)
            found = await task_repository.find_response(tx, user_id=owner_id, key=key, now=now)
    if found is None:  # the other request failed and rolled back: ask the client to retry
        raise Conflict(STILL_IN_PROGRESS)
    if found.request_hash != request_hash:
        raise ValidationFailed(loc=["header", "Idempotency-Key"], msg=KEY_REUSED)
    if found.resource_id is None:
        raise Conflict(STILL_IN_PROGRESS)
    return CreatedTask(body=orjson.loads(found.response_body), task_id=found.resource_id)


async def purge_expired_idempotency_records(db: Queries, *, now: datetime) -> int:
    return await task_repository.delete_expired_idempotency_records(db, now=now)
