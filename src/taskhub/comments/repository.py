"""Every query about comments. A comment is reached only through its task (`_ON_VISIBLE_TASK`):
the caller sees it when they see its task (their personal task, or one of a project they belong
to), and every write repeats, in its WHERE clause, who may make it: the author with a role that
may comment, or (deleting) an admin or owner of the task's project."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)

from taskhub import pagination
from taskhub.access.roles import Action
from taskhub.access.scope import CALLER, task_scope
from taskhub.comments.schemas import CommentRecord
from taskhub.db.runner import Queries, columns_of, selecting
from taskhub.pagination import Position
from taskhub.tables import Comment, Task, User


@dataclass(frozen=True, slots=True)
class CommentOrigin:
    """Which task a comment the caller can see is on, and who wrote it: what a refused write's
    reason is read from."""

    task_id: uuid.UUID
    author_id: uuid.UUID | None


# Named apart from the columns: an INSERT or UPDATE may not bind a parameter under a column's name.
_THIS_COMMENT = Comment.id == bindparam("comment_id", type_=Comment.id.type)


def _columns(author: Any) -> tuple[Any, ...]:
    return columns_of(CommentRecord, Comment, author=author)


_COMMENT = _columns(User.username)
# What a write returns: only the caller writes their own comment, so its author is the caller (a
# RETURNING clause cannot join, and SQLite's would not correlate a subquery on the comment).
_WRITTEN = _columns(select(User.username).where(User.id == CALLER).scalar_subquery())


def _on_task(rule: ColumnElement[bool]) -> ColumnElement[bool]:
    """The comment's task satisfies `rule` (a condition on `Task`)."""
    return exists().where(Task.id == Comment.task_id, rule)


# The one scope every comment query starts from: the caller sees the comment's task.
_ON_VISIBLE_TASK = _on_task(task_scope())
_LISTING = (
    select(*_COMMENT)
    .outerjoin(User, User.id == Comment.author_id)
    .where(Comment.task_id == bindparam("task_id", type_=Comment.task_id.type), _ON_VISIBLE_TASK)
)
_KEYS = (Comment.created_at, Comment.id)
_PAGES = {
    after: (
        (_LISTING.where(pagination.beyond(_KEYS, descending=False)) if after else _LISTING)
        .order_by(*pagination.directed(_KEYS, descending=False))
        .limit(bindparam("limit"))
    )
    for after in (False, True)
}
_ORIGIN = select(*selecting(CommentOrigin, Comment.task_id, Comment.author_id)).where(
    _THIS_COMMENT, _ON_VISIBLE_TASK
)

# A comment is written only if the caller may comment on the task: its personal owner, or a
# member of its live project whose role may comment.
_NEW_COMMENT = select(
    bindparam("new_id", type_=Comment.id.type),
    bindparam("on_task", type_=Comment.task_id.type),
    CALLER,
    bindparam("new_body", type_=Comment.body.type),
    bindparam("now", type_=Comment.created_at.type),
    bindparam("now", type_=Comment.updated_at.type),
).where(
    exists().where(
        Task.id == bindparam("on_task", type_=Comment.task_id.type), task_scope(Action.COMMENT)
    )
)
_INSERT = (
    insert(Comment)
    .from_select(["id", "task_id", "author_id", "body", "created_at", "updated_at"], _NEW_COMMENT)
    .returning(*_WRITTEN)
)
# Only its author edits a comment, and only while they may still comment on its task.
_UPDATE = (
    update(Comment)
    .where(_THIS_COMMENT, Comment.author_id == CALLER, _on_task(task_scope(Action.COMMENT)))
    .values(body=bindparam("new_body"), updated_at=bindparam("now"))
    .returning(*_WRITTEN)
)
# Its author while they may comment on the task; anyone's, an admin or owner of its project.
_DELETE = (
    delete(Comment)
    .where(
        _THIS_COMMENT,
        or_(
            and_(Comment.author_id == CALLER, _on_task(task_scope(Action.COMMENT))),
            _on_task(task_scope(Action.MANAGE)),
        ),
    )
    .returning(Comment.id)
)


async def list_visible(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    after: Position | None,
    limit: int,
) -> list[CommentRecord]:
    """A task's comments the caller can see, oldest first, keyset by (created_at, id)."""
    params: dict[str, Any] = {"caller_id": caller_id, "task_id": task_id, "limit": limit}
    if after is not None:
        params.update(after_key=after.key, after_id=after.last_id)
    return await db.records(_PAGES[after is not None], params, CommentRecord)


async def find_origin(
    db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID
) -> CommentOrigin | None:
    params = {"caller_id": caller_id, "comment_id": comment_id}
    return await db.record(_ORIGIN, params, CommentOrigin)


async def insert_comment(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: str,
    now: datetime,
) -> CommentRecord | None:
    """The new comment, or None if the caller may not comment on the task (nothing written)."""
    params = {
        "caller_id": caller_id,
        "on_task": task_id,
        "new_id": comment_id,
        "new_body": body,
        "now": now,
    }
    return await db.record(_INSERT, params, CommentRecord)


async def update_comment(
    db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID, body: str, now: datetime
) -> CommentRecord | None:
    """The edited comment, or None if the caller may not edit it (nothing changed)."""
    params = {"caller_id": caller_id, "comment_id": comment_id, "new_body": body, "now": now}
    return await db.record(_UPDATE, params, CommentRecord)


async def delete_comment(db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID) -> bool:
    params = {"caller_id": caller_id, "comment_id": comment_id}
    return await db.count(_DELETE, params) > 0
