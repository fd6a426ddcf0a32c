"""Routes: /notifications."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from taskhub.auth.dependencies import CurrentPrincipal
from taskhub.http.dependencies import Db, SettingsDep
from taskhub.http.openapi import error_responses
from taskhub.http.responses import json_response
from taskhub.notifications import service as notification_service
from taskhub.notifications.schemas import (
    NotificationPage,
    NotificationRead,
    render_notification,
)
from taskhub.pagination import KeysetCursors

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def notification_cursors(settings: SettingsDep) -> KeysetCursors:
    return _notification_cursors(settings.JWT_SECRET.get_secret_value())


@lru_cache(maxsize=4)
def _notification_cursors(secret: str) -> KeysetCursors:
    return KeysetCursors(secret, purpose="notification")


@router.get("", response_model=NotificationPage, responses=error_responses(401, 422))
async def list_notifications(
    principal: CurrentPrincipal,
    db: Db,
    cursors: Annotated[KeysetCursors, Depends(notification_cursors)],
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
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
    items = [render_notification(notification) for notification in page.items]
    return json_response({"items": items, "next_cursor": page.next_cursor})


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
