"""Routes: /users/me."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from taskhub.auth.dependencies import CurrentPrincipal
from taskhub.auth.schemas import UserRead, render_account
from taskhub.http.dependencies import ClientIP, Db, RateLimiterDep, SettingsDep
from taskhub.http.openapi import error_responses
from taskhub.http.responses import json_response
from taskhub.users import service as user_service
from taskhub.users.schemas import PasswordChange

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead, responses=error_responses(401))
async def read_current_user(principal: CurrentPrincipal) -> Response:
    """The caller's account."""
    return json_response(render_account(principal.account))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 415, 422),
)
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    db: Db,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    client_ip: ClientIP,
) -> Response:
    """Change the password; every other session of the caller ends."""
    await user_service.change_password(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=principal.username,
        current_session_id=principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 409))
async def delete_current_user(principal: CurrentPrincipal, db: Db) -> Response:
    """Delete the account with its tasks and sessions; its tokens stop working. 409 while it
    owns a project that has other members."""
    await user_service.delete_account(db, user_id=principal.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
