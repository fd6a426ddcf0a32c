from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp
from taskhub.tasks.models import TaskPriority, TaskStatus
from taskhub.tasks.repository import TaskRecord

PriorityName = Literal["low", "medium", "high"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: Any) -> Any:
    # Pydantic alone would also take Unix seconds (1764583200 or "1764583200") as a UTC time.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, like 2026-12-01T10:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 has no UTC datetime: 422, not 500
        raise ValueError("is out of range once converted to UTC") from None


# A timestamp a client sends: RFC 3339 text with an offset; naive or numeric ones are 422.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]
SortKey = Literal[
    "created_at",
    "-created_at",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
    "updated_at",
    "-updated_at",
]


def priority_rank(name: str) -> int:
    return TaskPriority[name.upper()].value


def priority_name(rank: int) -> str:
    return TaskPriority(rank).name.lower()


class TaskCreate(InputModel):
    title: Title
    description: Description | None = None
    status: TaskStatus = TaskStatus.TODO
    priority: PriorityName = "medium"
    due_at: Timestamp | None = None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class TaskUpdate(InputModel):
    """Any subset of TaskCreate's fields; `null` clears description and due_at only."""

    # None only means "not sent": the schema offers no null (nor a null default) where null is 422.
    title: Title | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    description: Description | None = None
    status: TaskStatus | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    priority: PriorityName | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )
    due_at: Timestamp | None = None

    @field_validator("title", "status", "priority", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class TaskRead(OutputModel):
    id: uuid.UUID
    title: str
    description: str | None
    status: TaskStatus
    priority: PriorityName
    due_at: UTCTimestamp | None
    completed_at: UTCTimestamp | None
    created_at: UTCTimestamp
    updated_at: UTCTimestamp

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return priority_name(value) if isinstance(value, int) else value


class TaskPage(OutputModel):
    items: list[TaskRead]
    next_cursor: str | None


_PRIORITY_NAMES = {rank.value: rank.name.lower() for rank in TaskPriority}


def render_task(task: TaskRecord) -> dict[str, Any]:
    """TaskRead's JSON, for every route that returns a task. The test client checks each
    response against TaskRead (tests/conftest.py)."""
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": _PRIORITY_NAMES[task.priority],
        "due_at": task.due_at,
        "completed_at": task.completed_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }
