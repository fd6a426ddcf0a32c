"""Comment rules: whoever sees a task sees its comments; commenters and up (on a personal task,
its owner) comment; only the author edits a comment; the author or an admin/owner of the
project deletes it; nothing changes in an archived project.

The happy path of a write is one statement whose WHERE clause holds the rule; only when it writes
nothing is the rule read back step by step, to say why (404, 403, or 409 when it changed since).
"""

from __future__ import annotations

import uuid

from taskhub.access.roles import Action
from taskhub.access.rules import task_access
from taskhub.clock import new_id, utcnow
from taskhub.comments import repository as comment_repository
from taskhub.comments.schemas import CommentCreate, CommentRecord, CommentUpdate
from taskhub.db.runner import Queries
from taskhub.errors import Conflict, Forbidden, NotFound
from taskhub.pagination import Position

COMMENT_NOT_FOUND = "Comment not found"
AUTHOR_ONLY = "Only its author may edit a comment"
CHANGED_MEANWHILE = "The task's project changed meanwhile; retry"


async def list_comments(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, after: Position | None, limit: int
) -> list[CommentRecord]:
    """A task's comments, oldest first, from `after` on; 404 if the task is hidden.

    The page's query holds the task's visibility itself: only an empty page needs the task
    looked up, to tell a task without (more) comments from one the caller cannot see."""
    rows = await comment_repository.list_visible(
        db, caller_id=caller_id, task_id=task_id, after=after, limit=limit
    )
    if not rows:
        await task_access(db, caller_id=caller_id, task_id=task_id)
    return rows


async def create_comment(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, data: CommentCreate
) -> CommentRecord:
    """One INSERT ... SELECT ... RETURNING that writes only if the caller may comment."""
    comment = await comment_repository.insert_comment(
        db,
        caller_id=caller_id,
        task_id=task_id,
        comment_id=new_id(),
        body=data.body,
        now=utcnow(),
    )
    if comment is None:
        access = await task_access(db, caller_id=caller_id, task_id=task_id)
        access.require(Action.COMMENT)
        raise Conflict(CHANGED_MEANWHILE)
    return comment


async def update_comment(
    db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID, changes: CommentUpdate
) -> CommentRecord:
    """The author changes the body, while they may still comment on the task."""
    comment = await comment_repository.update_comment(
        db, caller_id=caller_id, comment_id=comment_id, body=changes.body, now=utcnow()
    )
    if comment is None:
        raise await _why_refused(db, caller_id=caller_id, comment_id=comment_id, editing=True)
    return comment


async def delete_comment(db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID) -> None:
    """The author, while they may comment; anyone's comment, an admin or owner of the project."""
    if not await comment_repository.delete_comment(db, caller_id=caller_id, comment_id=comment_id):
        raise await _why_refused(db, caller_id=caller_id, comment_id=comment_id, editing=False)


async def _why_refused(
    db: Queries, *, caller_id: uuid.UUID, comment_id: uuid.UUID, editing: bool
) -> Exception:
    """Why a write found nothing to change: 404 (the caller cannot see it), 403 (their role, the
    author rule, or an archived project), or 409 (the rights changed between write and read)."""
    origin = await comment_repository.find_origin(db, caller_id=caller_id, comment_id=comment_id)
    if origin is None:
        return NotFound(COMMENT_NOT_FOUND)
    access = await task_access(db, caller_id=caller_id, task_id=origin.task_id)
    if origin.author_id == caller_id:
        access.require(Action.COMMENT)
    elif editing:
        return Forbidden(AUTHOR_ONLY)
    else:
        access.require(Action.MANAGE)
    return Conflict(CHANGED_MEANWHILE)
