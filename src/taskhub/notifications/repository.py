"""Every query about notifications, and the reminder scan's reads and writes. A user reaches
notifications only through `_OWNED`: another user's is simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as upsert

from taskhub import pagination
from taskhub.access.scope import CALLER, task_within_reach
from taskhub.db.runner import IntegrityViolation, Queries, columns_of, selecting
from taskhub.notifications.schemas import NotificationRecord
from taskhub.pagination import Position
from taskhub.tables import PENDING_WITH_DUE_DATE, Notification, ProjectMember, Task


@dataclass(frozen=True, slots=True)
class DueTask:
    id: uuid.UUID
    recipient_id: uuid.UUID
    title: str
    due_at: datetime


_NOTIFICATION = columns_of(NotificationRecord, Notification)
# The caller's own, and of those only what their token reaches (access.scope).
_OWNER_SCOPE = and_(Notification.user_id == CALLER, task_within_reach(Notification.task_id))
_OWNED = select(*_NOTIFICATION).where(_OWNER_SCOPE)
# Newest first: a walk of the (user_id, created_at, id) index backwards.
_NEWEST_FIRST = (Notification.created_at, Notification.id)


def _page_statement(*, unread_only: bool, after: bool) -> Any:
    query = _OWNED
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if after:
        query = query.where(pagination.beyond(_NEWEST_FIRST, descending=True))
    order = pagination.directed(_NEWEST_FIRST, descending=True)
    return query.order_by(*order).limit(bindparam("limit"))


_PAGES = {
    (unread_only, after): _page_statement(unread_only=unread_only, after=after)
    for unread_only in (False, True)
    for after in (False, True)
}
# Reading it again keeps the first time: one statement, whatever the notification's state.
_MARK_READ = (
    update(Notification)
    .where(_OWNER_SCOPE, Notification.id == bindparam("notification_id"))
    .values(
        read_at=func.coalesce(
            Notification.read_at, bindparam("now", type_=Notification.read_at.type)
        )
    )
    .returning(*_NOTIFICATION)
)


async def list_owned(
    db: Queries,
    *,
    user_id: uuid.UUID,
    unread_only: bool,
    after: Position | None,
    limit: int,
) -> list[NotificationRecord]:
    """Newest first, keyset by (created_at, id)."""
    params: dict[str, Any] = {"caller_id": user_id, "limit": limit}
    if after is not None:
        params.update(after_key=after.key, after_id=after.last_id)
    statement = _PAGES[unread_only, after is not None]
    return await db.records(statement, params, NotificationRecord)


async def mark_read(
    db: Queries, *, user_id: uuid.UUID, notification_id: uuid.UUID, now: datetime
) -> NotificationRecord | None:
    """Set read_at once; None if it is not the user's."""
    params = {"caller_id": user_id, "notification_id": notification_id, "now": now}
    return await db.record(_MARK_READ, params, NotificationRecord)


_REMINDED = exists().where(Notification.task_id == Task.id, Notification.task_due_at == Task.due_at)
# Who a project task's reminder is for: its assignee, or its creator when it has none.
_PROJECT_RECIPIENT = func.coalesce(Task.assignee_id, Task.creator_id)
# ...only while they are a member of the task's project (one primary-key probe per task). A task
# whose recipient left (or whose creator's account is gone, with no assignee) is not reminded; it
# stays unreminded, so whoever is assigned to it later within the window gets the reminder.
_RECIPIENT_IS_MEMBER = exists().where(
    ProjectMember.project_id == Task.project_id, ProjectMember.user_id == _PROJECT_RECIPIENT
)
_RECIPIENT = case((Task.project_id.is_(None), Task.owner_id), else_=_PROJECT_RECIPIENT).label(
    "recipient_id"
)
_DUE_TASKS = select(*selecting(DueTask, Task.id, _RECIPIENT, Task.title, Task.due_at)).where(
    # The partial index's own predicate, as SQL text: `status != :param` would keep
    # PostgreSQL from using that index in a generic (cached) plan of a prepared statement.
    PENDING_WITH_DUE_DATE,
    Task.due_at >= bindparam("window_start", type_=Task.due_at.type),
    Task.due_at <= bindparam("window_end", type_=Task.due_at.type),
    ~_REMINDED,
    # A personal task's owner always gets it; a project task's recipient while a member.
    or_(Task.project_id.is_(None), _RECIPIENT_IS_MEMBER),
)
_DUE_TASKS_FIRST = _DUE_TASKS.order_by(Task.due_at, Task.id).limit(bindparam("limit"))
_DUE_TASKS_AFTER = (
    _DUE_TASKS.where(pagination.beyond((Task.due_at, Task.id), descending=False))
    .order_by(Task.due_at, Task.id)
    .limit(bindparam("limit"))
)
# The rows are the parameters of one cached statement, sent as one batch; a reminder that
# exists already is skipped by the unique (task_id, task_due_at) constraint.
_INSERT_REMINDER = (
    upsert(Notification)
    .values(
        {
            name: bindparam(name)
            for name in ("id", "user_id", "task_id", "task_due_at", "kind", "message", "created_at")
        }
    )
    .on_conflict_do_nothing(index_elements=[Notification.task_id, Notification.task_due_at])
    .returning(Notification.id)
)


async def due_tasks_batch(
    db: Queries,
    *,
    window_start: datetime,
    window_end: datetime,
    after: Position | None,
    limit: int,
) -> list[DueTask]:
    """Pending tasks due in [window_start, window_end] with no reminder for their current due_at
    and someone to remind (the owner of a personal task; a project task's assignee, else its
    creator, while a member), in (due_at, id) order, served by the partial index on pending
    tasks' due dates."""
    params: dict[str, Any] = {
        "window_start": window_start,
        "window_end": window_end,
        "limit": limit,
    }
    if after is None:
        return await db.records(_DUE_TASKS_FIRST, params, DueTask)
    params.update(after_key=after.key, after_id=after.last_id)
    return await db.records(_DUE_TASKS_AFTER, params, DueTask)


async def insert_reminders(db: Queries, rows: list[dict[str, Any]]) -> int:
    """Insert reminders, skipping any that already exist; returns how many were new.

    A task deleted since it was read makes its row fail the foreign key; then the batch is
    retried row by row, each on its own, so that one vanished task does not cost the others
    their reminder.
    """
    try:
        return await db.count_many(_INSERT_REMINDER, rows)
    except IntegrityViolation:
        pass
    created = 0
    for row in rows:
        try:
            created += await db.count_many(_INSERT_REMINDER, [row])
        except IntegrityViolation:
            continue
    return created
