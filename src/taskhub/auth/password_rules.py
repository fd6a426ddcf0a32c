"""What makes a password acceptable at registration and on change (ASVS 5.0 6.2)."""

from __future__ import annotations

from taskhub.errors import ValidationFailed
from taskhub.security.common_passwords import is_common_password
from taskhub.security.passwords import BCRYPT_MAX_BYTES, fits_bcrypt


def check_new_password(password: str, *, username: str, min_length: int, field: str) -> None:
    """Raise a 422 naming `field` when the password breaks a rule. No composition rules."""
    message = _broken_rule(password, username=username, min_length=min_length)
    if message is not None:
        raise ValidationFailed(loc=["body", field], msg=message)


def _broken_rule(password: str, *, username: str, min_length: int) -> str | None:
    if len(password) < min_length:
        return f"must be at least {min_length} characters long"
    if not fits_bcrypt(password):
        return f"must be at most {BCRYPT_MAX_BYTES} bytes when UTF-8 encoded (longer passwords are not truncated)"
    if password.casefold() == username.casefold():
        return "must not be the same as the username"
    if is_common_password(password):
        return "is one of the most common passwords; choose another"
    return None
