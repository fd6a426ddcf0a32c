from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from taskhub.schemas import InputModel, UTCTimestamp, page_model, read_model, renderer

# Kept as written (not trimmed): a comment's layout is its author's.
Body = Annotated[str, Field(min_length=1, max_length=10_000)]


class CommentCreate(InputModel):
    body: Body


class CommentUpdate(InputModel):
    """The new body: the only thing of a comment its author can change."""

    body: Body


@dataclass(frozen=True, slots=True)
class CommentRecord:
    """A comment, as the repository selects it and every route returns it: `author` is the
    author's username (None once the account is deleted)."""

    id: uuid.UUID
    task_id: uuid.UUID
    author_id: uuid.UUID | None
    author: str | None
    body: str
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


CommentRead = read_model(CommentRecord, "CommentRead")
CommentPage = page_model(CommentRead, "CommentPage")
render_comment = renderer(CommentRecord)
