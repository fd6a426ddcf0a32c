from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, create_model
from pydantic.json_schema import SkipJsonSchema

from taskhub.access.grants import Scope
from taskhub.schemas import (
    FROM_JSON_STRING,
    InputModel,
    OutputModel,
    UTCTimestamp,
    UUIDString,
    read_model,
    renderer,
)

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"

# A JWT in compact form: three base64url segments joined by dots (RFC 7515 7.1).
JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


class UserRegister(InputModel):
    username: str = Field(
        min_length=3,
        max_length=32,
        pattern=USERNAME_PATTERN,
        description="3-32 of A-Z a-z 0-9 _ . -",
    )
    # No length limits here: a short or over-long password must get the rule's own message
    # (password_rules). The OpenAPI document states PASSWORD_MIN_LENGTH as minLength (openapi.py).
    password: str = Field(
        description="at least PASSWORD_MIN_LENGTH characters, at most 72 bytes in UTF-8",
    )


class LoginJSON(InputModel):
    # No upper limits: an over-long username or password is merely wrong at login (401), not
    # malformed (422); the request body limit bounds them.
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


def _no_null_defaults(schema: dict[str, Any]) -> None:
    for field in schema["properties"].values():
        field.pop("default", None)


# Documents the login form in OpenAPI (a named schema, so client generators name it too). The
# route reads only username and password from the form and validates them as LoginJSON.
class LoginForm(BaseModel):
    """OAuth2 password grant (RFC 6749 4.3.2): the other OAuth2 fields are accepted and ignored."""

    # An OAuth2 field that is not sent is absent, not null.
    model_config = ConfigDict(json_schema_extra=_no_null_defaults)

    username: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)
    grant_type: str | SkipJsonSchema[None] = None
    scope: str | SkipJsonSchema[None] = None
    client_id: str | SkipJsonSchema[None] = None
    client_secret: SecretStr | SkipJsonSchema[None] = None


class RefreshRequest(InputModel):
    # Any string is a well-formed request; a bad token (even an over-long one) is a 401. So the
    # JWT's form is documented (for generated requests and clients), not validated: that would
    # turn some 401s into 422s.
    refresh_token: str = Field(json_schema_extra={"pattern": JWT_PATTERN})


@dataclass(frozen=True, slots=True)
class Account:
    """An account, as the repository selects it and `/users/me` returns it."""

    id: uuid.UUID
    username: str
    created_at: UTCTimestamp


UserRead = read_model(Account, "UserRead")
render_account = renderer(Account)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    created_at: UTCTimestamp
    last_used_at: UTCTimestamp
    expires_at: UTCTimestamp
    user_agent: str | None


class TokenPair(OutputModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class SessionRead(OutputModel):
    id: uuid.UUID
    created_at: UTCTimestamp
    last_used_at: UTCTimestamp
    expires_at: UTCTimestamp
    current: bool
    user_agent: str | None


class SessionList(OutputModel):
    items: list[SessionRead]


# The renderers: each resource's JSON, written once, for every route that returns it. Their
# output is checked against the models above by the test client on every response (tests/).
def render_session(session: SessionRecord, *, current: uuid.UUID) -> dict[str, Any]:
    return {
        "id": session.id,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "expires_at": session.expires_at,
        "current": session.id == current,
        "user_agent": session.user_agent,
    }


def render_tokens(access_token: str, refresh_token: str, expires_in: int) -> dict[str, Any]:
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": expires_in,
    }


class PasswordChange(InputModel):
    # No length caps: a wrong (even huge) current password is a 401, and an over-long new one
    # gets the rule's message naming the 72-byte limit. MAX_BODY_BYTES bounds both.
    current_password: str
    new_password: str


# Personal access tokens (ADR 0016).

TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_TOKEN_PROJECTS = 50
MAX_REVOKED_AT_ONCE = 100


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A personal access token as lists show it: never the secret, which only its creation
    shows, once."""

    id: uuid.UUID
    name: str
    scopes: list[Scope]
    project_ids: list[uuid.UUID] | None
    last4: str
    created_at: UTCTimestamp
    expires_at: UTCTimestamp
    last_used_at: UTCTimestamp | None


TokenRead = read_model(TokenRecord, "Token")
render_token = renderer(TokenRecord)
TokenCreated = create_model(
    "TokenCreated",
    __base__=TokenRead,
    __module__=__name__,
    token=(str, Field(description="The secret, `thp_…`: shown this once, never again")),
)


class TokenList(OutputModel):
    items: list[TokenRead]  # type: ignore[valid-type]


class TokenCreate(InputModel):
    name: TokenName
    scopes: list[Annotated[Scope, FROM_JSON_STRING]] = Field(min_length=1, max_length=len(Scope))
    expires_in_days: int = Field(default=30, ge=1, le=366)
    project_ids: list[UUIDString] | None = Field(
        default=None, min_length=1, max_length=MAX_TOKEN_PROJECTS
    )


class TokenRevocation(InputModel):
    """Tokens found where they should not be: each live one is ended, whatever the others are
    (a string that is no token is passed over: the answer is the same)."""

    tokens: list[str] = Field(min_length=1, max_length=MAX_REVOKED_AT_ONCE)
