"""Base schemas shared by every domain."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    create_model,
    field_validator,
)

R = TypeVar("R")


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


# One shape per resource. A resource is declared once, as the record its repository selects (a
# frozen dataclass whose fields are named after the columns they come from): its response model
# (the OpenAPI schema), its page model and its renderer are all made from that declaration, so a
# new field is the column, the record field and, where clients send it, the request model.


@dataclass(frozen=True, slots=True)
class Shown:
    """A record field that clients see otherwise than it is stored: as `type` in the schema,
    converted by `convert` in the JSON (a priority's rank shown by name, say)."""

    type: Any
    convert: Callable[[Any], Any]


# A record field that is selected and used but never shown (the version behind an ETag):
# `Annotated[int, INTERNAL]`.
INTERNAL = object()


def _shown_fields(record: type[Any]) -> list[tuple[str, Any, Shown | None]]:
    """(name, type in the schema, how it is converted) of each field a client sees, in order."""
    hints = get_type_hints(record, include_extras=True)
    shown = []
    for field in dataclasses.fields(record):
        hint = hints[field.name]
        metadata = getattr(hint, "__metadata__", ())
        if INTERNAL in metadata:
            continue
        conversion = next((item for item in metadata if isinstance(item, Shown)), None)
        shown.append((field.name, hint if conversion is None else conversion.type, conversion))
    return shown


# Each response model made from a record, and that record: what the tests walk.
RECORDS: dict[type[BaseModel], type[Any]] = {}


def read_model(record: type[Any], name: str) -> type[OutputModel]:
    """The response model (and OpenAPI schema) of a resource, made from its record."""
    fields: dict[str, Any] = {
        field: (schema_type, ...) for field, schema_type, _ in _shown_fields(record)
    }
    model = create_model(name, __base__=OutputModel, __module__=record.__module__, **fields)
    RECORDS[model] = record
    return model


def page_model(read: type[OutputModel], name: str) -> type[OutputModel]:
    """A listing's response model: a page of `read` items and the next page's cursor."""
    return create_model(
        name,
        __base__=OutputModel,
        __module__=read.__module__,
        items=(list[read], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, ...),
    )


def renderer(record: type[R]) -> Callable[[R], dict[str, Any]]:
    """The one renderer of a resource: its record's shown fields as JSON-ready values, in the
    schema's order. The test client checks every response against the read model.

    Written out as one dict display, as `dataclasses` writes `__init__`: a listing renders every
    item of every page, and a loop over the fields cost three times as much."""
    conversions: dict[str, Callable[[Any], Any]] = {}
    entries = []
    for name, _, conversion in _shown_fields(record):
        if not name.isidentifier():
            raise TypeError(f"{record.__name__}.{name} is no identifier")
        value = f"item.{name}"
        if conversion is not None:
            conversions[f"_convert_{name}"] = conversion.convert
            value = f"_convert_{name}({value})"
        entries.append(f"{name!r}: {value}")
    source = f"def render(item):\n    return {{{', '.join(entries)}}}\n"
    namespace: dict[str, Any] = dict(conversions)
    exec(source, namespace)  # noqa: S102 - made from the record's own field names, checked above
    render: Callable[[R], dict[str, Any]] = namespace["render"]
    render.__qualname__ = f"render_{record.__name__}"
    return render
