"""Routes: /tasks/{task_id}/comments and /comments/{comment_id}."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from taskhub.access.grants import Scope
from taskhub.auth.dependencies import Principal, needs
from taskhub.comments import service as comment_service
from taskhub.comments.schemas import (
    CommentCreate,
    CommentPage,
    CommentRead,
    CommentUpdate,
    render_comment,
)
from taskhub.http.dependencies import Db
from taskhub.http.openapi import error_responses
from taskhub.http.pages import Listing, listing
from taskhub.http.responses import json_response

router = APIRouter(tags=["comments"])


comment_listing = listing("comment")


@router.get(
    "/tasks/{task_id}/comments",
    response_model=CommentPage,
    responses=error_responses(401, 404, 422),
)
async def list_comments(
    task_id: uuid.UUID,
    principal: Annotated[Principal, needs(Scope.TASKS_READ)],
    db: Db,
    listing: Annotated[Listing, Depends(comment_listing)],
) -> Response:
    """A task's comments, oldest first, for whoever sees the task."""
    page = listing.page(bound_to={"reader": str(principal.user_id), "task": str(task_id)})
    rows = await comment_service.list_comments(
        db, caller_id=principal.user_id, task_id=task_id, after=page.after, limit=page.limit
    )
    return page.response(rows, render_comment)


@router.post(
    "/tasks/{task_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentRead,
    responses=error_responses(401, 403, 404, 409, 415, 422),
)
async def create_comment(
    task_id: uuid.UUID,
    body: CommentCreate,
    principal: Annotated[Principal, needs(Scope.COMMENTS_WRITE)],
    db: Db,
) -> Response:
    """Comment on a task: a commenter or more in its project, or the owner of a personal task."""
    comment = await comment_service.create_comment(
        db, caller_id=principal.user_id, task_id=task_id, data=body
    )
    headers = {"Location": f"/api/v1/comments/{comment.id}"}
    return json_response(render_comment(comment), status_code=201, headers=headers)


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentRead,
    responses=error_responses(401, 403, 404, 409, 415, 422),
)
async def update_comment(
    comment_id: uuid.UUID,
    body: CommentUpdate,
    principal: Annotated[Principal, needs(Scope.COMMENTS_WRITE)],
    db: Db,
) -> Response:
    """Change a comment's body (its author only)."""
    comment = await comment_service.update_comment(
        db, caller_id=principal.user_id, comment_id=comment_id, changes=body
    )
    return json_response(render_comment(comment))


@router.delete(
    "/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_comment(
    comment_id: uuid.UUID, principal: Annotated[Principal, needs(Scope.COMMENTS_WRITE)], db: Db
) -> Response:
    """Delete a comment: its author, or an admin or owner of the task's project."""
    await comment_service.delete_comment(db, caller_id=principal.user_id, comment_id=comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
