"""Routes: /notifications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from taskhub.auth.dependencies import CurrentPrincipal
from taskhub.http.dependencies import Db
from taskhub.http.openapi import error_responses
from taskhub.http.pages import PageCursor, PageLimit, cursors_of, page_response
from taskhub.http.responses import json_response
from taskhub.notifications import service as notification_service
from taskhub.notifications.schemas import (
    NotificationPage,
    NotificationRead,
    render_notification,
)
from taskhub.pagination import KeysetCursors

router = APIRouter(prefix="/notifications", tags=["notifications"])


notification_cursors = cursors_of("notification")


@router.get("", response_model=NotificationPage, responses=error_responses(401, 422))
async def list_notifications(
    principal: CurrentPrincipal,
    db: Db,
    cursors: Annotated[KeysetCursors, Depends(notification_cursors)],
    unread: bool = False,
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> Response:
    """The caller's notifications, newest first; `unread=true` for unread ones only."""
    page = await notification_service.list_notifications(
        db,
        user_id=principal.user_id,
        unread_only=unread,
        limit=limit,
        cursor=cursor,
        cursors=cursors,
    )
    return page_response(page, render_notification)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationRead,
    responses=error_responses(401, 404, 422),
)
async def mark_notification_read(
    notification_id: uuid.UUID, principal: CurrentPrincipal, db: Db
) -> Response:
    """Mark one of the caller's notifications read (idempotent); another user's is 404."""
    notification = await notification_service.mark_read(
        db, user_id=principal.user_id, notification_id=notification_id
    )
    return json_response(render_notification(notification))
