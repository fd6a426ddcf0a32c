"""Routes: /notifications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from taskhub.access.grants import Scope
from taskhub.auth.dependencies import Principal, needs
from taskhub.http.dependencies import Db
from taskhub.http.openapi import error_responses
from taskhub.http.pages import Listing, listing
from taskhub.http.responses import json_response
from taskhub.notifications import service as notification_service
from taskhub.notifications.schemas import (
    NotificationPage,
    NotificationRead,
    render_notification,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])


notification_listing = listing("notification")


@router.get("", response_model=NotificationPage, responses=error_responses(401, 422))
async def list_notifications(
    *,
    principal: Annotated[Principal, needs(Scope.NOTIFICATIONS_READ)],
    db: Db,
    unread: bool = False,
    listing: Annotated[Listing, Depends(notification_listing)],
) -> Response:
    """The caller's notifications, newest first; `unread=true` for unread ones only."""
    page = listing.page(bound_to={"user": str(principal.user_id), "unread": unread})
    rows = await notification_service.list_notifications(
        db, user_id=principal.user_id, unread_only=unread, after=page.after, limit=page.limit
    )
    return page.response(rows, render_notification)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationRead,
    responses=error_responses(401, 404, 422),
)
async def mark_notification_read(
    notification_id: uuid.UUID,
    principal: Annotated[Principal, needs(Scope.NOTIFICATIONS_WRITE)],
    db: Db,
) -> Response:
    """Mark one of the caller's notifications read (idempotent); another user's is 404."""
    notification = await notification_service.mark_read(
        db, user_id=principal.user_id, notification_id=notification_id
    )
    return json_response(render_notification(notification))
