from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from taskhub.schemas import InputModel, OutputModel, UTCTimestamp
from taskhub.tasks.models import TaskPriority, TaskStatus

PriorityName = Literal["low", "medium", "high"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
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
    due_at: AwareDatetime | None = None


class TaskUpdate(InputModel):
    """Any subset of TaskCreate's fields; `null` clears description and due_at only."""

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    priority: PriorityName | None = None
    due_at: AwareDatetime | None = None

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
