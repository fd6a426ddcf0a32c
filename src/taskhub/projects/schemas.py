from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from taskhub.schemas import (
    INTERNAL,
    InputModel,
    OutputModel,
    UTCTimestamp,
    absent_or_set,
    page_model,
    read_model,
    renderer,
)

RoleName = Literal["owner", "admin", "editor", "commenter", "viewer"]
# `owner` is not a role one can set: ownership moves only by transfer.
MemberRole = Literal["admin", "editor", "commenter", "viewer"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=10_000)]


class ProjectCreate(InputModel):
    name: Name
    description: Description | None = None


class ProjectUpdate(InputModel):
    """Any of name, description, archived; `null` clears the description only."""

    name: Name | None = absent_or_set()
    description: Description | None = None
    archived: bool | None = absent_or_set()

    @field_validator("name", "archived", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class MemberPut(InputModel):
    role: MemberRole


class TransferRequest(InputModel):
    username: str = Field(min_length=1, max_length=64)


class RoleRead(OutputModel):
    role: RoleName
    actions: list[str]


class RoleTable(OutputModel):
    roles: list[RoleRead]


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """A project as its member sees it (`role` is the caller's), as the repository selects it
    and every route returns it; `version` is the ETag."""

    id: uuid.UUID
    name: str
    description: str | None
    archived: bool
    role: RoleName
    created_at: UTCTimestamp
    updated_at: UTCTimestamp
    version: Annotated[int, INTERNAL]


@dataclass(frozen=True, slots=True)
class MemberRecord:
    user_id: uuid.UUID
    username: str
    role: RoleName
    added_at: UTCTimestamp


ProjectRead = read_model(ProjectRecord, "ProjectRead")
ProjectPage = page_model(ProjectRead, "ProjectPage")
render_project = renderer(ProjectRecord)
MemberRead = read_model(MemberRecord, "MemberRead")
render_member = renderer(MemberRecord)


class MemberList(OutputModel):
    items: list[MemberRead]  # type: ignore[valid-type]
