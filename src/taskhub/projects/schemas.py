from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from taskhub import etags
from taskhub.projects.repository import MemberRecord, ProjectRecord
from taskhub.schemas import InputModel, OutputModel, UTCTimestamp, absent_or_set

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


class ProjectRead(OutputModel):
    id: uuid.UUID
    name: str
    description: str | None
    archived: bool
    role: RoleName
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class ProjectPage(OutputModel):
    items: list[ProjectRead]
    next_cursor: str | None


class MemberPut(InputModel):
    role: MemberRole


class MemberRead(OutputModel):
    user_id: uuid.UUID
    username: str
    role: RoleName
    added_at: UTCTimestamp


class MemberList(OutputModel):
    items: list[MemberRead]


class TransferRequest(InputModel):
    username: str = Field(min_length=1, max_length=64)


class RoleRead(OutputModel):
    role: RoleName
    actions: list[str]


class RoleTable(OutputModel):
    roles: list[RoleRead]


def render_project(project: ProjectRecord) -> dict[str, Any]:
    """ProjectRead's JSON, for every route that returns a project."""
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "archived": project.archived,
        "role": project.role,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


def render_member(member: MemberRecord) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "username": member.username,
        "role": member.role,
        "added_at": member.added_at,
    }


def etag(project: ProjectRecord) -> str:
    """A strong validator: the version moves on with every change of the project."""
    return etags.etag(project.version)
