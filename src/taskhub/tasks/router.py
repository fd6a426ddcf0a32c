"""Routes: /tasks."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from taskhub.auth.dependencies import CurrentPrincipal, current_principal
from taskhub.dependencies import DbSession, SettingsDep
from taskhub.openapi import error_responses
from taskhub.schemas import NoNulStr
from taskhub.tasks import service as task_service
from taskhub.tasks.cursor import CursorCodec
from taskhub.tasks.models import TaskStatus
from taskhub.tasks.repository import TaskFilters
from taskhub.tasks.schemas import (
    PriorityName,
    SortKey,
    TaskCreate,
    TaskPage,
    TaskRead,
    TaskUpdate,
    Timestamp,
    priority_rank,
)

router = APIRouter(prefix="/tasks", tags=["tasks"], dependencies=[Depends(current_principal)])


def task_filters(
    status: Annotated[list[TaskStatus] | None, Query(max_length=3)] = None,
    priority: Annotated[list[PriorityName] | None, Query(max_length=3)] = None,
    due_before: Timestamp | None = None,
    due_after: Timestamp | None = None,
    q: Annotated[NoNulStr | None, Query(min_length=1, max_length=100)] = None,
) -> TaskFilters:
    return TaskFilters(
        statuses=tuple(sorted({s.value for s in status or ()})),
        priorities=tuple(sorted({priority_rank(p) for p in priority or ()})),
        due_before=due_before,
        due_after=due_after,
        search=q.casefold() if q else None,
    )


def cursor_codec(settings: SettingsDep) -> CursorCodec:
    return CursorCodec(settings.JWT_SECRET.get_secret_value())


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=error_responses(401, 415, 422),
)
async def create_task(
    body: TaskCreate, principal: CurrentPrincipal, db: DbSession, response: Response
) -> Any:
    """Create a task owned by the caller."""
    task = await task_service.create_task(db, owner_id=principal.user.id, data=body)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return task


@router.get("", response_model=TaskPage, responses=error_responses(401, 422))
async def list_tasks(
    principal: CurrentPrincipal,
    db: DbSession,
    filters: Annotated[TaskFilters, Depends(task_filters)],
    cursors: Annotated[CursorCodec, Depends(cursor_codec)],
    sort: SortKey = "-created_at",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Any:
    """The caller's tasks, filtered and sorted, one keyset page at a time."""
    return await task_service.list_tasks(
        db,
        owner_id=principal.user.id,
        filters=filters,
        sort=sort,
        limit=limit,
        cursor=cursor,
        cursors=cursors,
    )


@router.get("/{task_id}", response_model=TaskRead, responses=error_responses(401, 404, 422))
async def get_task(task_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> Any:
    """One of the caller's tasks; anyone else's is 404."""
    return await task_service.get_task(db, owner_id=principal.user.id, task_id=task_id)


@router.patch("/{task_id}", response_model=TaskRead, responses=error_responses(401, 404, 415, 422))
async def update_task(
    task_id: uuid.UUID, body: TaskUpdate, principal: CurrentPrincipal, db: DbSession
) -> Any:
    """Change some fields of one of the caller's tasks."""
    return await task_service.update_task(
        db, owner_id=principal.user.id, task_id=task_id, changes=body
    )


@router.delete(
    "/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 404, 422)
)
async def delete_task(task_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> Response:
    """Delete one of the caller's tasks."""
    await task_service.delete_task(db, owner_id=principal.user.id, task_id=task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
