"""Routes: /auth/*, /users/me (the account, its password and its sessions) and /tokens (personal
access tokens). Register, login, refresh and the report of a leaked token are the only public
ones."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from taskhub.access.grants import ANY_TOKEN, SESSION
from taskhub.auth import access_tokens
from taskhub.auth import service as auth_service
from taskhub.auth.dependencies import Principal, needs
from taskhub.auth.schemas import (
    LoginJSON,
    PasswordChange,
    RefreshRequest,
    SessionList,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenPair,
    TokenRevocation,
    UserRead,
    UserRegister,
    render_account,
    render_session,
    render_token,
    render_tokens,
)
from taskhub.auth.service import IssuedTokens
from taskhub.errors import TaskHubError, ValidationFailed
from taskhub.http.bodies import LoneSurrogate, holds_lone_surrogate, without_lone_surrogates
from taskhub.http.dependencies import (
    ClientIP,
    Db,
    RateLimiterDep,
    SettingsDep,
    get_client_ip,
    get_rate_limiter,
)
from taskhub.http.openapi import error_responses
from taskhub.http.responses import json_response

public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])
tokens_router = APIRouter(prefix="/tokens", tags=["tokens"])

LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"$ref": "#/components/schemas/LoginForm"}
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/LoginJSON"}},
        },
    }
}


@public_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=error_responses(409, 415, 422, 429),
)
async def register_user(
    body: UserRegister,
    db: Db,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    client_ip: ClientIP,
) -> Any:
    """Create an account. No token is issued here: log in next."""
    account = await auth_service.register(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=body.username,
        password=body.password,
    )
    return json_response(render_account(account), status_code=status.HTTP_201_CREATED)


@public_router.post(
    "/login",
    response_model=TokenPair,
    responses=error_responses(401, 415, 422),
    openapi_extra=LOGIN_BODY,
)
async def login(
    request: Request,
    db: Db,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    client_ip: ClientIP,
) -> Any:
    """OAuth2 password grant (form) or the same fields as JSON; returns an access + refresh pair."""
    credentials = await _login_credentials(request)
    issued = await auth_service.login(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=credentials.username,
        password=credentials.password,
        user_agent=request.headers.get("user-agent"),
    )
    return _tokens_response(issued)


async def login_refusal_while_hashing_full(request: Request) -> TaskHubError | None:
    """The answer to a login that arrives while the hash queue is full, given before routing (the
    middleware asks): a flood past the queue then costs each attempt its body and the limits, not
    a pass through the router and its dependencies, and still gets 429 where a limit refuses it.
    None when the body cannot be read as credentials: the route answers that (400, 415, 422)."""
    try:
        credentials = await _login_credentials(request)
    except Exception:  # whatever it is, the route reads the body again and answers it
        return None
    return await auth_service.refusal_while_hashing_full(
        limiter=await get_rate_limiter(request),
        username=credentials.username,
        client_ip=await get_client_ip(request),
    )


def _tokens_response(issued: IssuedTokens) -> Response:
    return json_response(
        render_tokens(issued.access_token, issued.refresh_token, issued.expires_in)
    )


async def _login_credentials(request: Request) -> LoginJSON:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        # Percent-encoded bytes that are not UTF-8 arrive as U+FFFD: a wrong password, no error.
        form = await request.form(max_files=0, max_fields=16)
        raw: Any = {key: form.get(key) for key in ("username", "password") if key in form}
    else:
        raw = await _login_json(request)
    if not isinstance(raw, dict):
        raise ValidationFailed(loc=["body"], msg="must be an object with username and password")
    # A lone surrogate is in nobody's username or password. U+FFFD stands in for it while the
    # body's shape is checked, and in the username from then on (no account has one; the limits
    # count it under a name Redis can store). The password goes on as it came: one without a
    # UTF-8 form cannot be anybody's, and security.passwords takes it as wrong.
    shape = {key: _printable(value) for key, value in raw.items()}
    try:
        credentials = LoginJSON.model_validate(shape)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ValidationFailed(
            loc=["body", *first["loc"]], msg=first["msg"], type_=first["type"]
        ) from None
    return credentials.model_copy(update={"password": raw["password"]})


async def _login_json(request: Request) -> Any:
    """The body decoded the one way (http.bodies). A lone surrogate in the username or the
    password is not malformed here but wrong: a 401 that counts like any other failure. In a
    key the 422 stands; in any other field the body is refused as it would be without it."""
    try:
        return await request.json()
    except LoneSurrogate as refused:
        document = refused.document
        if isinstance(document, dict) and not any(map(holds_lone_surrogate, document)):
            return document
        raise


def _printable(value: Any) -> Any:
    return without_lone_surrogates(value) if isinstance(value, str) else value


@public_router.post("/refresh", response_model=TokenPair, responses=error_responses(401, 415, 422))
async def refresh_tokens(body: RefreshRequest, db: Db, settings: SettingsDep) -> Any:
    """Spend a refresh token for a new pair in the same session. A spent token revokes the session."""
    issued = await auth_service.refresh(db, settings=settings, refresh_token=body.refresh_token)
    return _tokens_response(issued)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401))
async def logout(principal: Annotated[Principal, needs(SESSION)], db: Db) -> Response:
    """End the caller's session: its access and refresh tokens stop working at once."""
    await auth_service.logout(db, session_id=principal.session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me/sessions", response_model=SessionList, responses=error_responses(401))
async def list_sessions(principal: Annotated[Principal, needs(SESSION)], db: Db) -> Any:
    """The caller's active sessions, newest first."""
    sessions = await auth_service.list_sessions(db, user_id=principal.user_id)
    return json_response(
        {"items": [render_session(s, current=principal.session) for s in sessions]}
    )


@router.delete(
    "/users/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404, 422),
)
async def revoke_session(
    session_id: uuid.UUID, principal: Annotated[Principal, needs(SESSION)], db: Db
) -> Response:
    """End one of the caller's sessions; another user's is 404."""
    await auth_service.revoke_session(db, user_id=principal.user_id, session_id=session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.get("/me", response_model=UserRead, responses=error_responses(401))
async def read_current_user(principal: Annotated[Principal, needs(ANY_TOKEN)]) -> Response:
    """The caller's account."""
    return json_response(render_account(principal.account))


@users_router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 415, 422),
)
async def change_password(
    body: PasswordChange,
    principal: Annotated[Principal, needs(SESSION)],
    db: Db,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    client_ip: ClientIP,
) -> Response:
    """Change the password; every other session of the caller ends."""
    await auth_service.change_password(
        db,
        settings=settings,
        limiter=limiter,
        client_ip=client_ip,
        username=principal.username,
        current_session_id=principal.session,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.delete(
    "/me", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 409)
)
async def delete_current_user(principal: Annotated[Principal, needs(SESSION)], db: Db) -> Response:
    """Delete the account with its tasks and sessions; its tokens stop working. 409 while it
    owns a project that has other members."""
    await auth_service.delete_account(db, user_id=principal.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@tokens_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=error_responses(401, 403, 409, 415, 422),
)
async def create_token(
    body: TokenCreate,
    principal: Annotated[Principal, needs(SESSION)],
    db: Db,
    settings: SettingsDep,
) -> Response:
    """Make a personal access token. Its secret is in this response only: store it now."""
    record, secret = await access_tokens.create(
        db,
        settings=settings,
        user_id=principal.user_id,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
        project_ids=body.project_ids,
    )
    return json_response(
        {**render_token(record), "token": secret}, status_code=status.HTTP_201_CREATED
    )


@tokens_router.get("", response_model=TokenList, responses=error_responses(401, 403))
async def list_tokens(principal: Annotated[Principal, needs(SESSION)], db: Db) -> Response:
    """The caller's tokens, newest first, without their secrets."""
    records = await access_tokens.list_own(db, user_id=principal.user_id)
    return json_response({"items": [render_token(record) for record in records]})


@tokens_router.post(
    "/revoke",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,  # no body: it says nothing about what was found
    responses=error_responses(415, 422, 429),
)
async def revoke_tokens(
    body: TokenRevocation,
    db: Db,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    client_ip: ClientIP,
) -> Response:
    """For whoever finds a leaked token: each string that is a live token is ended and its owner
    notified. Always 202, whatever the strings were."""
    await limiter.admit_token_revocation(ip=client_ip)
    await access_tokens.revoke_found(db, settings=settings, tokens=body.tokens)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@tokens_router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_token(
    token_id: uuid.UUID, principal: Annotated[Principal, needs(SESSION)], db: Db
) -> Response:
    """End one of the caller's tokens at once, on every instance; another user's is 404."""
    await access_tokens.delete_own(db, user_id=principal.user_id, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
