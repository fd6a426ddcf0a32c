"""Task rules: who may do what with a task (its owner, or its project's roles), creation
(idempotent with a key), whole-PATCH updates with completion tracking, moves between projects,
conditional writes (If-Match), exact quotas and keyset pages of everything the caller can see.

The happy path of a write is one statement whose WHERE clause holds every rule; only when it
writes nothing do the rules get read back one by one, to say why (404, 403, 412, 422 or 409).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import orjson

from taskhub import etags
from taskhub.access.roles import Action
from taskhub.access.rules import (
    TASK_NOT_FOUND,
    is_member,
    require_in_project,
    require_member_of_all,
    require_whole_account,
    task_access,
)
from taskhub.clock import new_id, utcnow
from taskhub.config import Settings
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from taskhub.pagination import Position
from taskhub.tables import SEARCH_SEPARATOR, TaskStatus
from taskhub.tasks import repository as task_repository
from taskhub.tasks.repository import SortOrder, TaskChanges, TaskFilters
from taskhub.tasks.schemas import (
    TaskCreate,
    TaskRecord,
    TaskUpdate,
    label_key,
    priority_rank,
    render_task,
)

NOT_A_MEMBER = "is not a member of the task's project"
NOT_YOURS = "a personal task can be assigned only to its creator"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEY_REUSED = "was already used with a different request body"
STILL_IN_PROGRESS = "A request with this Idempotency-Key is still in progress; retry"
# Fields that can move a task or name a person: checked against memberships in a transaction.
_MEMBERSHIP_FIELDS = frozenset({"project_id", "assignee_id"})


def search_part(text: str | None) -> str:
    """One half of `search_text`: case-folded, and never holding the separator itself, so the
    first separator always splits title from description (a PATCH of one keeps the other)."""
    return (text or "").casefold().replace(SEARCH_SEPARATOR, " ")


def search_text(title: str, description: str | None) -> str:
    return f"{search_part(title)}{SEARCH_SEPARATOR}{search_part(description)}"


def _quota_reached(settings: Settings, project_id: uuid.UUID | None, count: int) -> Conflict:
    if project_id is None:
        name, limit, scope = "MAX_TASKS_PER_USER", settings.MAX_TASKS_PER_USER, "personal tasks"
    else:
        name, limit, scope = (
            "MAX_TASKS_PER_PROJECT",
            settings.MAX_TASKS_PER_PROJECT,
            "tasks in the project",
        )
    return Conflict(f"{name} reached: {count} {scope}, the limit is {limit}")


def _quota(settings: Settings, project_id: uuid.UUID | None) -> int:
    return settings.MAX_TASKS_PER_USER if project_id is None else settings.MAX_TASKS_PER_PROJECT


def _new_task(caller_id: uuid.UUID, data: TaskCreate) -> dict[str, Any]:
    """Every column of a new task: the fields sent (or their defaults), and what the server
    derives or owns."""
    now = utcnow()
    return {
        **data.model_dump(),
        "id": new_id(),
        "owner_id": caller_id if data.project_id is None else None,
        "creator_id": caller_id,
        "status": data.status.value,
        "priority": priority_rank(data.priority),
        "completed_at": now if data.status is TaskStatus.DONE else None,
        "created_at": now,
        "updated_at": now,
        "search_text": search_text(data.title, data.description),
        "label_keys": [label_key(label) for label in data.labels],
        "version": 1,
    }


def _transaction(db: Queries) -> AbstractAsyncContextManager[Queries]:
    """A transaction on `db`, or `db` itself when it already is one (a keyed create's)."""
    return db.transaction() if isinstance(db, Database) else nullcontext(db)


def _one_write(db: Queries) -> AbstractAsyncContextManager[Queries]:
    """Where a create's room and row are written together: one statement on PostgreSQL, two in
    one transaction on SQLite (no data-modifying CTE there; its writers queue anyway)."""
    return nullcontext(db) if db.dialect == "postgresql" else _transaction(db)


T = TypeVar("T")


class _CountFirst(Exception):
    """A write found no room in its slot inside a transaction, which may now hold that slot (a
    refused UPDATE keeps the row it rechecked locked): it starts over, counting first, so that
    every transaction locking a scope's slots takes them all in order, holding none before."""


async def _counting_first_on_retry(write: Callable[..., Awaitable[T]]) -> T:
    """`write` in a transaction; started over, counting first, if it found no room in its slot
    (its transaction, the claim of a key included, was rolled back)."""
    try:
        return await write(count_first=False)
    except _CountFirst:
        return await write(count_first=True)


async def create_task(
    db: Queries,
    *,
    settings: Settings,
    caller_id: uuid.UUID,
    data: TaskCreate,
    count_first: bool = False,
) -> TaskRecord:
    """One INSERT ... SELECT ... RETURNING in autocommit, which also takes a unit of the scope's
    room: the create is atomic without a transaction, and writes nothing unless the caller may,
    the assignee is a member and there is room. Refused, the rights are read back first (404,
    403, 422); then the scope is counted exactly, in the transaction that creates (409 at the
    quota)."""
    if data.project_id is None:
        require_whole_account()
    if data.project_id is None and data.assignee_id not in (None, caller_id):
        raise ValidationFailed(loc=["body", "assignee_id"], msg=NOT_YOURS)
    values = _new_task(caller_id, data)
    if not count_first:
        async with _one_write(db) as writer:
            task = await task_repository.insert_task(
                writer, caller_id=caller_id, values=values, take_room=True
            )
        if task is not None:
            return task
    # The quota is said only once the caller is known to see the project and may write in it.
    if data.project_id is not None:
        await require_in_project(
            db, caller_id=caller_id, project_id=data.project_id, action=Action.WRITE_TASKS
        )
        if data.assignee_id is not None and not await is_member(
            db, project_id=data.project_id, member_id=data.assignee_id
        ):
            raise ValidationFailed(loc=["body", "assignee_id"], msg=NOT_A_MEMBER)
    if not count_first and not isinstance(db, Database):
        raise _CountFirst
    async with _transaction(db) as tx:
        await _recount_room(tx, settings=settings, caller_id=caller_id, project_id=data.project_id)
        task = await task_repository.insert_task(
            tx, caller_id=caller_id, values=values, take_room=False
        )
        if task is None:  # the rights changed since they were read: nothing is kept
            raise Conflict("The project changed meanwhile; retry")
    return task


async def _recount_room(
    tx: Queries, *, settings: Settings, caller_id: uuid.UUID, project_id: uuid.UUID | None
) -> None:
    """A unit of room in the scope, its tasks counted exactly (in `tx`); 409 at the quota."""
    quota = _quota(settings, project_id)
    count = await task_repository.recount_room(
        tx, caller_id=caller_id, project_id=project_id, quota=quota
    )
    if count is None:
        raise Conflict("The project changed meanwhile; retry")
    if count >= quota:
        raise _quota_reached(settings, project_id, count)


async def get_task(db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID) -> TaskRecord:
    task = await task_repository.get_visible(db, caller_id=caller_id, task_id=task_id)
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def _expected_version(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, if_match: Collection[str] | None
) -> int | None:
    """The version a conditional write must still find (None: any). Several tags are rare: the
    current version is read to see whether one of them names it."""
    if if_match is None or etags.ANY in if_match:
        return None
    versions = etags.versions_named(list(if_match))
    if len(versions) == 1:
        return next(iter(versions))
    access = await task_access(db, caller_id=caller_id, task_id=task_id)
    if not etags.names(if_match, access.version):
        raise PreconditionFailed()
    return access.version


async def _why_refused(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, expected: int | None
) -> Exception:
    """Why a write found nothing to change: 404, 403, or 412 (changed since, or meanwhile)."""
    access = await task_access(db, caller_id=caller_id, task_id=task_id)
    access.require(Action.WRITE_TASKS)
    return PreconditionFailed()


def _changes(changes: TaskUpdate, values: dict[str, Any]) -> TaskChanges:
    if "priority" in values:
        values["priority"] = priority_rank(values["priority"])
    if "status" in values:
        values["status"] = TaskStatus(values["status"]).value
    if "labels" in values:
        values["label_keys"] = [label_key(label) for label in values["labels"]]
    sent = changes.model_fields_set
    return TaskChanges(
        sent=frozenset(sent),
        values=values,
        title_search=search_part(values["title"]) if "title" in sent else None,
        description_search=search_part(values["description"]) if "description" in sent else None,
    )


async def update_task(
    db: Database,
    *,
    settings: Settings,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: TaskUpdate,
    if_match: Collection[str] | None,
) -> TaskRecord:
    """Apply the fields the client sent, whole; `completed_at` follows the status in and out of
    `done`. An empty PATCH changes nothing, not even `updated_at` (but If-Match still holds)."""
    expected = await _expected_version(db, caller_id=caller_id, task_id=task_id, if_match=if_match)
    sent = changes.model_fields_set
    if not sent:
        current = await get_task(db, caller_id=caller_id, task_id=task_id)
        if expected is not None and current.version != expected:
            raise PreconditionFailed()
        return current
    values: dict[str, Any] = {name: getattr(changes, name) for name in sent}
    if sent & _MEMBERSHIP_FIELDS:
        return await _counting_first_on_retry(
            partial(
                _move_or_assign,
                db,
                settings=settings,
                caller_id=caller_id,
                task_id=task_id,
                changes=changes,
                values=values,
                expected=expected,
            )
        )
    return await _write(
        db,
        caller_id=caller_id,
        task_id=task_id,
        changes=_changes(changes, values),
        expected=expected,
    )


async def _write(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: TaskChanges,
    expected: int | None,
) -> TaskRecord:
    """The one UPDATE of a PATCH; if it changed nothing, why (404, 403 or 412)."""
    task = await task_repository.update_task(
        db,
        caller_id=caller_id,
        task_id=task_id,
        changes=changes,
        expected_version=expected,
        now=utcnow(),
    )
    if task is None:
        raise await _why_refused(db, caller_id=caller_id, task_id=task_id, expected=expected)
    return task


async def _move_or_assign(
    db: Database,
    *,
    settings: Settings,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: TaskUpdate,
    values: dict[str, Any],
    expected: int | None,
    count_first: bool,
) -> TaskRecord:
    """A PATCH that moves the task or names an assignee: the memberships it relies on are read
    in the transaction that writes, with the task's row locked.

    Moving needs the right to delete tasks where it is and to create them in the target; to
    `null` it becomes the mover's personal task (they become its creator). An assignee who is
    not a member of the target is cleared, unless the PATCH names one, who then must be.
    """
    async with db.transaction() as tx:
        access = await task_access(tx, caller_id=caller_id, task_id=task_id, lock=True)
        access.require(Action.WRITE_TASKS)
        if expected is not None and access.version != expected:
            raise PreconditionFailed()
        target = values.get("project_id", access.project_id)
        moved = target != access.project_id
        if moved:
            if target is None:
                require_whole_account()
            else:
                await require_in_project(
                    tx, caller_id=caller_id, project_id=target, action=Action.WRITE_TASKS
                )
            # Room in the target, exactly: taken from a slot, or counted when the slot is empty.
            if count_first:
                await _recount_room(tx, settings=settings, caller_id=caller_id, project_id=target)
            elif not await task_repository.take_room(tx, caller_id=caller_id, project_id=target):
                raise _CountFirst
            values["owner_id"] = caller_id if target is None else None
            if target is None:
                values["creator_id"] = caller_id
        assignee = values.get("assignee_id", access.assignee_id)
        if assignee is not None and not await _may_be_assigned(tx, caller_id, target, assignee):
            if "assignee_id" in values:
                msg = NOT_YOURS if target is None else NOT_A_MEMBER
                raise ValidationFailed(loc=["body", "assignee_id"], msg=msg)
            values["assignee_id"] = None
        return await _write(
            tx,
            caller_id=caller_id,
            task_id=task_id,
            changes=_changes(changes, values),
            expected=None,
        )


async def _may_be_assigned(
    db: Queries, caller_id: uuid.UUID, project_id: uuid.UUID | None, assignee: uuid.UUID
) -> bool:
    if project_id is None:
        return assignee == caller_id
    return await is_member(db, project_id=project_id, member_id=assignee)


async def delete_task(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, if_match: Collection[str] | None
) -> None:
    expected = await _expected_version(db, caller_id=caller_id, task_id=task_id, if_match=if_match)
    deleted = await task_repository.delete_task(
        db, caller_id=caller_id, task_id=task_id, expected_version=expected
    )
    if not deleted:
        raise await _why_refused(db, caller_id=caller_id, task_id=task_id, expected=expected)


async def list_tasks(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    filters: TaskFilters,
    order: SortOrder,
    after: Position | None,
    limit: int,
) -> list[TaskRecord]:
    """The tasks the caller can see, filtered, in `order` from `after` on; 404 if the filter
    names a project they cannot see."""
    await require_member_of_all(db, caller_id=caller_id, project_ids=filters.project_ids)
    return await task_repository.list_visible(
        db, caller_id=caller_id, filters=filters, order=order, after=after, limit=limit
    )


@dataclass(frozen=True, slots=True)
class CreatedTask:
    """The 201 body of a create, fresh or replayed from an earlier request with the same key."""

    body: dict[str, Any]
    task_id: uuid.UUID


async def create_task_once(
    db: Database,
    *,
    settings: Settings,
    owner_id: uuid.UUID,
    key: str,
    request_hash: str,
    data: TaskCreate,
) -> CreatedTask:
    """Create a task at most once per (owner, Idempotency-Key) within 24 hours.

    A retry with the same body gets the first response again, even if the task has changed or
    gone since; the same key with another body is 422. The claim, the task and the recorded
    response commit together, before the 201 is sent.
    """
    return await _counting_first_on_retry(
        partial(
            _create_once,
            db,
            settings=settings,
            owner_id=owner_id,
            key=key,
            request_hash=request_hash,
            data=data,
        )
    )


async def _create_once(
    db: Database,
    *,
    settings: Settings,
    owner_id: uuid.UUID,
    key: str,
    request_hash: str,
    data: TaskCreate,
    count_first: bool,
) -> CreatedTask:
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
                task = await create_task(
                    tx,
                    settings=settings,
                    caller_id=owner_id,
                    data=data,
                    count_first=count_first,
                )
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
