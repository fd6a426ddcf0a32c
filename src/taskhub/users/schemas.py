from __future__ import annotations

from taskhub.schemas import InputModel


class PasswordChange(InputModel):
    # No length caps: a wrong (even huge) current password is a 401, and an over-long new one
    # gets the rule's message naming the 72-byte limit. MAX_BODY_BYTES bounds both.
    current_password: str
    new_password: str
