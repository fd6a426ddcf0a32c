"""Every query about tasks. Each one starts from the owner's scope (`_OWNED`, `_OWNER_SCOPE`):
another user's task is simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from taskhub import pagination
from taskhub.db.runner import Queries, selecting
from taskhub.tasks.models import SEARCH_SEPARATOR, IdempotencyRecord, Task, TaskStatus


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """What a client sees of a task; `priority` is the stored rank."""

    id: uuid.UUID
    title: str
    description: str | None
    status: str
    priority: int
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TaskFilters:
    statuses: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    search: str | None = None  # already case-folded


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A PATCH, already validated: only the fields the client sent are set (`sent`)."""

    sent: frozenset[str]
    values: dict[str, Any]  # column values: title, description, status, priority (rank), due_at
    title_search: str | None = None  # the folded title, when the title changes
    description_search: str | None = None  # the folded description, when it changes


_TASK = selecting(
    TaskRecord,
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
_OWNER_SCOPE = Task.owner_id == bindparam("caller_id")
# The one base of every read a user makes: their own tasks.
_OWNED = select(*_TASK).where(_OWNER_SCOPE)
_THIS_TASK = Task.id == bindparam("task_id")

_GET_OWNED = _OWNED.where(_THIS_TASK)
_INSERT = (
    insert(Task)
    .values(
        {column.key: bindparam(column.key) for column in (*_TASK, Task.owner_id, Task.search_text)}
    )
    .returning(*_TASK)
)
_DELETE_OWNED = delete(Task).where(_OWNER_SCOPE, _THIS_TASK).returning(Task.id)


async def get_owned(db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> TaskRecord | None:
    return await db.record(_GET_OWNED, {"caller_id": owner_id, "task_id": task_id}, TaskRecord)


async def insert_task(db: Queries, *, values: dict[str, Any]) -> TaskRecord:
    """Insert one task (every written column given) and return it."""
    task = await db.record(_INSERT, values, TaskRecord)
    assert task is not None  # noqa: S101 - an INSERT ... RETURNING returns its row
    return task


async def delete_owned(db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> bool:
    return await db.count(_DELETE_OWNED, {"caller_id": owner_id, "task_id": task_id}) > 0


async def update_owned(
    db: Queries, *, owner_id: uuid.UUID, task_id: uuid.UUID, changes: TaskChanges, now: datetime
) -> TaskRecord | None:
    """Apply a PATCH whole, in one UPDATE ... RETURNING: concurrent PATCHes cannot interleave
    their fields, and `completed_at` follows the status in the same statement."""
    params: dict[str, Any] = {"caller_id": owner_id, "task_id": task_id, "now": now}
    params.update({f"new_{name}": value for name, value in changes.values.items()})
    if changes.title_search is not None:
        params["title_search"] = changes.title_search
    if changes.description_search is not None:
        params["description_search"] = changes.description_search
    done = changes.values.get("status") == TaskStatus.DONE
    statement = _update_statement(changes.sent, done if "status" in changes.sent else None)
    return await db.record(statement, params, TaskRecord)


class _separator_at(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """1-based position of the search separator (U+001F) in `search_text`."""

    type = Integer()
    inherit_cache = True
    name = "separator_at"


@compiles(_separator_at)
def _separator_at_sqlite(element: _separator_at, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}, char(31))"


@compiles(_separator_at, "postgresql")
def _separator_at_postgresql(element: _separator_at, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}, chr(31))"


@lru_cache(maxsize=64)
def _update_statement(sent: frozenset[str], done: bool | None) -> Executable:
    """Built once per set of sent fields (and whether the new status is `done`)."""
    values: dict[Any, Any] = {name: bindparam(f"new_{name}") for name in sent}
    values["updated_at"] = bindparam("now")
    if done is True:  # into done: stamped now, unless it was done already
        values["completed_at"] = case(
            (Task.status == TaskStatus.DONE.value, Task.completed_at),
            else_=bindparam("now", type_=Task.completed_at.type),
        )
    elif done is False:
        values["completed_at"] = null()
    title_part: Any = bindparam("title_search", type_=Text())
    description_part: Any = bindparam("description_search", type_=Text())
    separator = _separator_at(Task.search_text)
    if "title" in sent and "description" not in sent:
        # The separator and the folded description behind it stay as they are.
        values["search_text"] = title_part + func.substr(Task.search_text, separator, type_=Text())
    elif "description" in sent and "title" not in sent:
        kept = func.substr(Task.search_text, 1, separator, type_=Text())
        values["search_text"] = kept + description_part
    elif "title" in sent:
        values["search_text"] = title_part + literal(SEARCH_SEPARATOR, Text()) + description_part
    return update(Task).where(_OWNER_SCOPE, _THIS_TASK).values(values).returning(*_TASK)


@dataclass(frozen=True, slots=True)
class SortOrder:
    column: str  # created_at, updated_at, priority or due_at
    descending: bool

    @property
    def nullable(self) -> bool:
        return self.column == "due_at"


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
    db: Queries,
    *,
    owner_id: uuid.UUID,
    filters: TaskFilters,
    order: SortOrder,
    after: pagination.Position | None,
    limit: int,
) -> list[TaskRecord]:
    """One page in keyset order; ties broken by id in the sort's direction, missing due dates last.

    Every query is a walk of an `(owner_id, <sort column>, id)` index in one direction, so a
    page costs the same however many tasks the owner has. Tasks without a due date are a second
    segment (`due_at IS NULL`, by id) read only when the first one runs out: a single
    `NULLS LAST` ordering would not match the index when descending, and PostgreSQL would sort.
    """
    params = _page_params(owner_id, filters)
    tasks: list[TaskRecord] = []
    if after is None or after.key is not None:
        keyed = {**params, "limit": limit}
        if after is not None:
            keyed.update(after_key=after.key, after_id=after.last_id)
        shape = _shape(order, filters, after, undated=False)
        tasks = await db.records(_page_statement(shape), keyed, TaskRecord)
    if order.nullable and len(tasks) < limit:
        undated = {**params, "limit": limit - len(tasks)}
        if after is not None and after.key is None:
            undated["after_id"] = after.last_id
        in_undated = after if after is not None and after.key is None else None
        shape = _shape(order, filters, in_undated, undated=True)
        tasks += await db.records(_page_statement(shape), undated, TaskRecord)
    return tasks


def _shape(
    order: SortOrder, filters: TaskFilters, after: pagination.Position | None, *, undated: bool
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
    params: dict[str, Any] = {"caller_id": owner_id}
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
    """Built once per shape, so the runner compiles it once too."""
    order = shape.order
    column: Any = getattr(Task, order.column)
    query = _OWNED.where(*_filter_clauses(shape))
    if shape.undated:
        query = query.where(column.is_(None))
        sort_keys: tuple[Any, ...] = (Task.id,)
    else:
        if order.nullable:
            query = query.where(column.is_not(None))
        sort_keys = (column, Task.id)
    if shape.after:
        query = query.where(pagination.beyond(sort_keys, descending=order.descending))
    return query.order_by(*pagination.directed(sort_keys, descending=order.descending)).limit(
        bindparam("limit")
    )


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


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    """What a keyed create answered first; `resource_id` is None while it is still running."""

    request_hash: str
    response_body: str
    resource_id: uuid.UUID | None


_THIS_KEY = (
    IdempotencyRecord.user_id == bindparam("caller_id"),
    IdempotencyRecord.key == bindparam("idempotency_key"),
)
_FIND_RESPONSE = select(
    *selecting(
        IdempotentResponse,
        IdempotencyRecord.request_hash,
        IdempotencyRecord.response_body,
        IdempotencyRecord.resource_id,
    )
).where(*_THIS_KEY, IdempotencyRecord.expires_at > bindparam("now"))
_DELETE_EXPIRED_KEY = delete(IdempotencyRecord).where(
    *_THIS_KEY, IdempotencyRecord.expires_at <= bindparam("now")
)
_CLAIM_KEY = (
    upsert(IdempotencyRecord)
    .values(
        user_id=bindparam("caller_id"),
        key=bindparam("idempotency_key"),
        request_hash=bindparam("request_hash"),
        response_body="",
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .on_conflict_do_nothing(index_elements=[IdempotencyRecord.user_id, IdempotencyRecord.key])
    .returning(IdempotencyRecord.key)
)
_RECORD_RESPONSE = (
    update(IdempotencyRecord)
    .where(*_THIS_KEY)
    .values(response_body=bindparam("body"), resource_id=bindparam("new_resource_id"))
)
_DELETE_EXPIRED_RECORDS = (
    delete(IdempotencyRecord)
    .where(IdempotencyRecord.expires_at <= bindparam("now"))
    .returning(IdempotencyRecord.key)
)


async def find_response(
    db: Queries, *, user_id: uuid.UUID, key: str, now: datetime
) -> IdempotentResponse | None:
    params = {"caller_id": user_id, "idempotency_key": key, "now": now}
    return await db.record(_FIND_RESPONSE, params, IdempotentResponse)


async def claim_key(
    db: Queries,
    *,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Take the key; False if another request holds it (the primary key decides).

    On PostgreSQL a concurrent claim of the same key waits for the holder's transaction and
    then does nothing, so the loser can read the winner's committed response.
    """
    await db.execute(
        _DELETE_EXPIRED_KEY, {"caller_id": user_id, "idempotency_key": key, "now": now}
    )
    params = {
        "caller_id": user_id,
        "idempotency_key": key,
        "request_hash": request_hash,
        "now": now,
        "expires_at": expires_at,
    }
    return await db.count(_CLAIM_KEY, params) > 0


async def record_response(
    db: Queries, *, user_id: uuid.UUID, key: str, body: str, resource_id: uuid.UUID
) -> None:
    params = {
        "caller_id": user_id,
        "idempotency_key": key,
        "body": body,
        "new_resource_id": resource_id,
    }
    await db.execute(_RECORD_RESPONSE, params)


async def delete_expired_idempotency_records(db: Queries, *, now: datetime) -> int:
    return await db.count(_DELETE_EXPIRED_RECORDS, {"now": now})
