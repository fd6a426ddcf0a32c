from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp
from taskhub.users.schemas import USERNAME_PATTERN


class UserRegister(InputModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-32 of A-Z a-z 0-9 _ . -")
    password: str = Field(
        max_length=1024,
        description="at least PASSWORD_MIN_LENGTH characters, at most 72 bytes in UTF-8",
    )


class LoginJSON(InputModel):
    # Generous limits: an over-long password is merely wrong at login (401), not malformed.
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(InputModel):
    refresh_token: str = Field(max_length=4096)


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
