"""Routes: /tasks."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from taskhub import etags
from taskhub.access.grants import Scope
from taskhub.auth.dependencies import Principal, needs
from taskhub.errors import ValidationFailed
from taskhub.etags import IfMatch, tags
from taskhub.http.dependencies import Db, SettingsDep
from taskhub.http.openapi import error_responses
from taskhub.http.pages import KeyParser, Listing, instant, listing, rank_key, timestamp_key
from taskhub.http.responses import json_response
from taskhub.schemas import NoNulStr
from taskhub.tables import SEARCH_SEPARATOR, TaskPriority, TaskStatus
from taskhub.tasks import service as task_service
from taskhub.tasks.repository import SortOrder, TaskFilters
from taskhub.tasks.schemas import (
    MAX_LABELS,
    Label,
    PriorityName,
    SortKey,
    TaskCreate,
    TaskPage,
    TaskRead,
    TaskRecord,
    TaskUpdate,
    Timestamp,
    label_key,
    priority_rank,
    render_task,
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="1-255 printable ASCII characters; a retry with the same key and body "
        "within 24 h returns the first 201 response again",
    ),
]

router = APIRouter(prefix="/tasks", tags=["tasks"])


async def task_filters(
    status: Annotated[list[TaskStatus] | None, Query(max_length=3)] = None,
    priority: Annotated[list[PriorityName] | None, Query(max_length=3)] = None,
    due_before: Timestamp | None = None,
    due_after: Timestamp | None = None,
    q: Annotated[NoNulStr | None, Query(min_length=1, max_length=100)] = None,
    project_id: Annotated[
        list[uuid.UUID | Literal["none"]] | None,
        Query(max_length=20, description="a project's id (repeatable), or `none`: personal tasks"),
    ] = None,
    assignee_id: Annotated[
        uuid.UUID | Literal["me", "none"] | None,
        Query(description="a member's id, `me`, or `none`: unassigned"),
    ] = None,
    label: Annotated[
        list[Label] | None,
        Query(max_length=MAX_LABELS, description="a label (repeatable: every one must be there)"),
    ] = None,
) -> TaskFilters:
    projects = set(project_id or ())
    return TaskFilters(
        statuses=tuple(sorted({s.value for s in status or ()})),
        priorities=tuple(sorted({priority_rank(p) for p in priority or ()})),
        due_before=due_before,
        due_after=due_after,
        search=_search_term(q),
        personal=not projects or "none" in projects,
        all_projects=not projects,
        project_ids=tuple(sorted(p for p in projects if isinstance(p, uuid.UUID))),
        assignee=assignee_id,
        label_keys=tuple(sorted({label_key(text) for text in label or ()})),
    )


def _search_term(q: str | None) -> str | None:
    if not q:
        return None
    if SEARCH_SEPARATOR in q:
        raise ValidationFailed(loc=["query", "q"], msg="must not contain control character U+001F")
    return q.casefold()


task_listing = listing("task")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=error_responses(401, 403, 404, 409, 415, 422),
)
async def create_task(
    body: TaskCreate,
    principal: Annotated[Principal, needs(Scope.TASKS_WRITE)],
    db: Db,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a personal task, or one in a project where the caller is an editor or more. With
    `Idempotency-Key`, a retry replays the first 201."""
    if idempotency_key is None:
        task = await task_service.create_task(
            db, settings=settings, caller_id=principal.user_id, data=body
        )
        return _created_response(render_task(task), task.id)
    created = await task_service.create_task_once(
        db,
        settings=settings,
        owner_id=principal.user_id,
        key=idempotency_key,
        request_hash=_body_hash(await request.json()),
        data=body,
    )
    return _created_response(created.body, created.task_id)


def _body_hash(parsed_body: Any) -> str:
    """Bodies are compared as parsed JSON: key order and whitespace do not matter."""
    return hashlib.sha256(orjson.dumps(parsed_body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _created_response(body: dict[str, Any], task_id: uuid.UUID) -> Response:
    # A new task is at its first version, replayed or not.
    headers = {"Location": f"/api/v1/tasks/{task_id}", "ETag": etags.etag(1)}
    return json_response(body, status_code=201, headers=headers)


def _task_response(task: TaskRecord) -> Response:
    return json_response(render_task(task), headers={"ETag": etags.etag(task.version)})


@router.get("", response_model=TaskPage, responses=error_responses(401, 404, 422))
async def list_tasks(
    *,
    principal: Annotated[Principal, needs(Scope.TASKS_READ)],
    db: Db,
    sort: SortKey = "-created_at",
    listing: Annotated[Listing, Depends(task_listing)],
    filters: Annotated[TaskFilters, Depends(task_filters)],
) -> Response:
    """Every task the caller can see (personal ones and their projects'), filtered and sorted,
    one keyset page at a time."""
    order = SortOrder(column=sort.lstrip("-"), descending=sort.startswith("-"))
    page = listing.page(
        bound_to=listing_bound_to(caller_id=principal.user_id, order=order, filters=filters),
        key=_sort_key(order),
    )
    rows = await task_service.list_tasks(
        db,
        caller_id=principal.user_id,
        filters=filters,
        order=order,
        after=page.after,
        limit=page.limit,
    )
    return page.response(rows, render_task, key=order.column)


def _sort_key(order: SortOrder) -> KeyParser:
    if order.column == "priority":
        return rank_key(_PRIORITY_RANKS)
    return timestamp_key(nullable=order.nullable)


_PRIORITY_RANKS = frozenset(rank.value for rank in TaskPriority)


def listing_bound_to(
    *, caller_id: uuid.UUID, order: SortOrder, filters: TaskFilters
) -> dict[str, Any]:
    """Everything that defines the listing; a cursor only fits the listing it came from."""
    assignee = filters.assignee
    return {
        "owner": str(caller_id),
        "sort": [order.column, order.descending],
        "status": sorted(filters.statuses),
        "priority": sorted(filters.priorities),
        "due_before": instant(filters.due_before),
        "due_after": instant(filters.due_after),
        "q": filters.search,
        "personal": filters.personal,
        "all_projects": filters.all_projects,
        "projects": sorted(str(project) for project in filters.project_ids),
        "assignee": None if assignee is None else str(assignee),
        "labels": sorted(filters.label_keys),
    }


@router.get("/{task_id}", response_model=TaskRead, responses=error_responses(401, 404, 422))
async def get_task(
    task_id: uuid.UUID, principal: Annotated[Principal, needs(Scope.TASKS_READ)], db: Db
) -> Response:
    """One task the caller can see, with its ETag; anyone else gets 404."""
    task = await task_service.get_task(db, caller_id=principal.user_id, task_id=task_id)
    return _task_response(task)


@router.patch(
    "/{task_id}",
    response_model=TaskRead,
    responses=error_responses(401, 403, 404, 409, 412, 415, 422),
)
async def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    principal: Annotated[Principal, needs(Scope.TASKS_WRITE)],
    db: Db,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of a task, or move it; the PATCH applies whole or not at all."""
    task = await task_service.update_task(
        db,
        settings=settings,
        caller_id=principal.user_id,
        task_id=task_id,
        changes=body,
        if_match=tags(if_match),
    )
    return _task_response(task)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 412, 422),
)
async def delete_task(
    task_id: uuid.UUID,
    principal: Annotated[Principal, needs(Scope.TASKS_WRITE)],
    db: Db,
    if_match: IfMatch = None,
) -> Response:
    """Delete a task (its comments and reminders go with it)."""
    await task_service.delete_task(
        db, caller_id=principal.user_id, task_id=task_id, if_match=tags(if_match)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
