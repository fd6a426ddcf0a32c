"""Base schemas shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


NoNulStr = Annotated[str, AfterValidator(reject_nul)]


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Every timestamp a client sees is UTC with a `Z`: normalised here, and pydantic-core writes a
# UTC datetime with `Z` itself (no Python serializer on the hot path of every listing).
UTCTimestamp = Annotated[datetime, AfterValidator(_as_utc)]


class InputModel(BaseModel):
    """Request bodies: unknown or server-owned fields are refused, and so is NUL in any string."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str):
            reject_nul(value)
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
