from __future__ import annotations

import uuid

from pydantic import Field

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"


class UserRead(OutputModel):
    id: uuid.UUID
    username: str
    created_at: UTCTimestamp


class PasswordChange(InputModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)
