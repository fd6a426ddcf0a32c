from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from taskhub.comments.repository import CommentRecord
from taskhub.schemas import InputModel, OutputModel, UTCTimestamp

# Kept as written (not trimmed): a comment's layout is its author's.
Body = Annotated[str, Field(min_length=1, max_length=10_000)]


class CommentCreate(InputModel):
    body: Body


class CommentUpdate(InputModel):
    """The new body: the only thing of a comment its author can change."""

    body: Body


class CommentRead(OutputModel):
    id: uuid.UUID
    task_id: uuid.UUID
    author_id: uuid.UUID | None
    author: str | None
    body: str
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class CommentPage(OutputModel):
    items: list[CommentRead]
    next_cursor: str | None


def render_comment(comment: CommentRecord) -> dict[str, Any]:
    """CommentRead's JSON, for every route that returns a comment."""
    return {
        "id": comment.id,
        "task_id": comment.task_id,
        "author_id": comment.author_id,
        "author": comment.author,
        "body": comment.body,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
    }
