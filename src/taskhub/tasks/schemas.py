from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
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

from taskhub.schemas import (
    FROM_JSON_STRING,
    INTERNAL,
    InputModel,
    Shown,
    UTCTimestamp,
    UUIDString,
    absent_or_set,
    page_model,
    read_model,
    reject_nul,
    renderer,
)
from taskhub.tables import TaskPriority, TaskStatus

PriorityName = Literal["low", "medium", "high"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
MAX_LABELS = 20
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(reject_nul),
]


def label_key(label: str) -> str:
    """Labels compare ignoring case in every script: `Ärger` and `ärger` are one label."""
    return label.casefold()


def _distinct_labels(labels: list[str]) -> list[str]:
    """Each label once, in the order sent, spelled as first sent."""
    distinct: dict[str, str] = {}
    for label in labels:
        distinct.setdefault(label_key(label), label)
    if len(distinct) > MAX_LABELS:
        raise ValueError(f"has {len(distinct)} distinct labels; at most {MAX_LABELS} are allowed")
    return list(distinct.values())


# Up to 20 distinct labels; a longer list of repeats is still bounded, so the work is too.
Labels = Annotated[list[Label], Field(max_length=100), AfterValidator(_distinct_labels)]
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
Timestamp = Annotated[
    AwareDatetime, FROM_JSON_STRING, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)
]
StatusName = Annotated[TaskStatus, FROM_JSON_STRING]
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


_PRIORITY_NAMES = {rank.value: rank.name.lower() for rank in TaskPriority}
# A rank's name: the dict's own lookup, called for every task of every page.
priority_name = _PRIORITY_NAMES.__getitem__


class TaskCreate(InputModel):
    title: Title
    description: Description | None = None
    status: StatusName = TaskStatus.TODO
    priority: PriorityName = "medium"
    due_at: Timestamp | None = None
    project_id: UUIDString | None = None
    assignee_id: UUIDString | None = None
    labels: Labels = Field(default_factory=list)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class TaskUpdate(InputModel):
    """Any subset of TaskCreate's fields; `null` clears description, due_at and assignee_id, and
    moves a project task out of its project (`project_id`)."""

    # None only means "not sent": the schema offers no null (nor a null default) where null is 422.
    title: Title | None = absent_or_set()
    description: Description | None = None
    status: StatusName | None = absent_or_set()
    priority: PriorityName | None = absent_or_set()
    due_at: Timestamp | None = None
    project_id: UUIDString | None = None
    assignee_id: UUIDString | None = None
    # Sent or not is what counts (model_fields_set); `null` is refused below.
    labels: Labels = Field(default_factory=list, json_schema_extra=_no_default)

    @field_validator("title", "status", "priority", "labels", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


Priority = Annotated[int, Shown(PriorityName, priority_name)]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task, as the repository selects it and every route returns it: the response model,
    the page model and the renderer below are made from these fields. `priority` is stored as
    its rank (sorting by it is sorting by a number) and shown by name; `version` is the ETag."""

    id: uuid.UUID
    project_id: uuid.UUID | None
    title: str
    description: str | None
    status: TaskStatus
    priority: Priority
    due_at: UTCTimestamp | None
    completed_at: UTCTimestamp | None
    created_at: UTCTimestamp
    updated_at: UTCTimestamp
    assignee_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    labels: list[str]
    version: Annotated[int, INTERNAL]


TaskRead = read_model(TaskRecord, "TaskRead")
TaskPage = page_model(TaskRead, "TaskPage")
render_task = renderer(TaskRecord)
