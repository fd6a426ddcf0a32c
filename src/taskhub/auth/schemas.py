from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp
from taskhub.users.schemas import USERNAME_PATTERN

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


class RefreshRequest(InputModel):
    # Any string is a well-formed request; a bad token (even an over-long one) is a 401. So the
    # JWT's form is documented (for generated requests and clients), not validated: that would
    # turn some 401s into 422s.
    refresh_token: str = Field(json_schema_extra={"pattern": JWT_PATTERN})


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
