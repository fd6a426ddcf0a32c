"""Base schemas shared by every domain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator


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


# FastAPI validates a body as the Python objects `json.loads` made of it, and strict mode takes a
# UUID, a datetime or an enum member there only as such an object, never as the JSON string that
# carries it. A request field of such a type is declared `Annotated[T, FROM_JSON_STRING]`: parsed
# from its string as strict mode does for JSON text; any other JSON type is still refused.
FROM_JSON_STRING = Strict(False)
UUIDString = Annotated[uuid.UUID, FROM_JSON_STRING]


def absent_or_set() -> Any:
    """An optional request field that may be left out but not sent as `null`, typed `T | None`
    (None: not sent; the model refuses null itself). A nullable `T` rather than a union with an
    undocumented None, so that a wrong type is one error at the field's own loc; the JSON schema
    says `T` alone, without a null default."""
    return Field(default=None, json_schema_extra=_without_null)


def _without_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    (only,) = [member for member in schema.pop("anyOf") if member != {"type": "null"}]
    schema.update(only)


class InputModel(BaseModel):
    """Request bodies: strict JSON types (a boolean takes only true/false, an integer only an
    integer, a string only a string: "yes" or 1 is no boolean), unknown or server-owned fields
    refused, and NUL in any string."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str):
            reject_nul(value)
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
