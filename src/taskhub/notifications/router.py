"""Routes: /notifications."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from taskhub.auth.dependencies import CurrentPrincipal
from taskhub.dependencies import DbSession, SettingsDep
from taskhub.notifications import service as notification_service
from taskhub.notifications.schemas import NotificationPage, NotificationRead
from taskhub.openapi import error_responses
from taskhub.pagination import KeysetCursors

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def notification_cursors(settings: SettingsDep) -> KeysetCursors:
    return KeysetCursors(settings.JWT_SECRET.get_secret_value(), purpose="notification")


@router.get("", response_model=NotificationPage, responses=error_responses(401, 422))
async def list_notifications(
    principal: CurrentPrincipal,
    db: DbSession,
    cursors: Annotated[KeysetCursors, Depends(notification_cursors)],
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Any:
    """The caller's notifications, newest first; `unread=true` for unread ones only."""
    return await notification_service.list_notifications(
        db,
        user_id=principal.user_id,
        unread_only=unread,
        limit=limit,
        cursor=cursor,
        cursors=cursors,
    )


@router.post(
    "/{notification_id}/read",
    response_model=NotificationRead,
    responses=error_responses(401, 404, 422),
)
async def mark_notification_read(
    notification_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession
) -> Any:
    """Mark one of the caller's notifications read (idempotent); another user's is 404."""
    return await notification_service.mark_read(
        db, user_id=principal.user_id, notification_id=notification_id
    )
