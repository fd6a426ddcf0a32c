from __future__ import annotations

import uuid

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"


class UserRead(OutputModel):
    id: uuid.UUID
    username: str
    created_at: UTCTimestamp


class PasswordChange(InputModel):
    # No length caps: a wrong (even huge) current password is a 401, and an over-long new one
    # gets the rule's message naming the 72-byte limit. MAX_BODY_BYTES bounds both.
    current_password: str
    new_password: str
