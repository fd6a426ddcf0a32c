"""Every query about notifications, and the reminder scan's reads and writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.notifications.models import Notification
from taskhub.tasks.models import PENDING_WITH_DUE_DATE, Task


@dataclass(frozen=True, slots=True)
class DueTask:
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    due_at: datetime


def _owned(user_id: uuid.UUID) -> ColumnElement[bool]:
    return Notification.user_id == user_id


async def list_owned(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    unread_only: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Notification]:
    """Newest first, keyset by (created_at, id)."""
    query = select(Notification).where(_owned(user_id))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if after is not None:
        created_at, last_id = after
        query = query.where(
            tuple_(Notification.created_at, Notification.id)
            < tuple_(
                literal(created_at, type_=Notification.created_at.type),
                literal(last_id, type_=Notification.id.type),
            )
        )
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return list((await db.execute(query)).scalars())


async def mark_read(
    db: AsyncSession, *, user_id: uuid.UUID, notification_id: uuid.UUID, now: datetime
) -> Notification | None:
    """Set read_at once; reading it again keeps the first time. None if it is not the user's."""
    await db.execute(
        update(Notification)
        .where(_owned(user_id), Notification.id == notification_id, Notification.read_at.is_(None))
        .values(read_at=now)
    )
    result = await db.execute(
        select(Notification)
        .where(_owned(user_id), Notification.id == notification_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def due_tasks_batch(
    db: AsyncSession,
    *,
    window_start: datetime,
    window_end: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DueTask]:
    """Pending tasks due in [window_start, window_end] with no reminder for their current due_at,
    in (due_at, id) order, served by the partial index on pending tasks' due dates."""
    reminded = exists().where(
        Notification.task_id == Task.id, Notification.task_due_at == Task.due_at
    )
    query = select(Task.id, Task.owner_id, Task.title, Task.due_at).where(
        # The partial index's own predicate, as SQL text: `status != :param` would keep
        # PostgreSQL from using that index in a generic (cached) plan of a prepared statement.
        PENDING_WITH_DUE_DATE,
        Task.due_at >= window_start,
        Task.due_at <= window_end,
        ~reminded,
    )
    if after is not None:
        due_at, last_id = after
        query = query.where(
            tuple_(Task.due_at, Task.id)
            > tuple_(literal(due_at, type_=Task.due_at.type), literal(last_id, type_=Task.id.type))
        )
    rows = (await db.execute(query.order_by(Task.due_at, Task.id).limit(limit))).all()
    # due_at IS NOT NULL is part of the WHERE clause.
    return [
        DueTask(id=r.id, owner_id=r.owner_id, title=r.title, due_at=cast(datetime, r.due_at))
        for r in rows
    ]


async def insert_reminders(db: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert reminders, skipping any that already exist; returns how many were new.

    A task deleted since it was read makes its row fail the foreign key; then the batch is
    retried row by row so that one vanished task does not cost the others their reminder.
    """
    if not rows:
        return 0
    try:
        async with db.begin_nested():
            return await _insert_ignoring_duplicates(db, rows)
    except IntegrityError:
        pass
    created = 0
    for row in rows:
        try:
            async with db.begin_nested():
                created += await _insert_ignoring_duplicates(db, [row])
        except IntegrityError:
            continue
    return created


async def _insert_ignoring_duplicates(db: AsyncSession, rows: list[dict[str, Any]]) -> int:
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One cached statement with the rows as parameters (SQLAlchemy's "insertmanyvalues" sends
    # them as one multi-row INSERT). `.values(rows)` would compile a new statement with a bind
    # per cell for every batch, which took most of a scan's time. Core table: no ORM bulk path.
    statement = (
        insert(cast(Table, Notification.__table__))
        .on_conflict_do_nothing(index_elements=["task_id", "task_due_at"])
        .returning(Notification.__table__.c.id)
    )
    result = await db.execute(statement, rows)
    return len(result.all())
