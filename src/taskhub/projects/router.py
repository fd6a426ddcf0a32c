"""Routes: /projects, their members, ownership transfer and the roles table."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from taskhub import etags
from taskhub.access.grants import Scope
from taskhub.access.roles import Role, role_table
from taskhub.auth.dependencies import Principal, needs
from taskhub.etags import IfMatch, tags
from taskhub.http.dependencies import Db, SettingsDep
from taskhub.http.openapi import error_responses
from taskhub.http.pages import Listing, listing
from taskhub.http.responses import json_response
from taskhub.projects import service as project_service
from taskhub.projects.schemas import (
    MemberList,
    MemberPut,
    MemberRead,
    ProjectCreate,
    ProjectPage,
    ProjectRead,
    ProjectRecord,
    ProjectUpdate,
    RoleTable,
    TransferRequest,
    render_member,
    render_project,
)

router = APIRouter(prefix="/projects", tags=["projects"])


project_listing = listing("project")


def _project_response(project: ProjectRecord, *, status_code: int = 200) -> Response:
    headers = {"ETag": etags.etag(project.version)}
    if status_code == status.HTTP_201_CREATED:
        headers["Location"] = f"/api/v1/projects/{project.id}"
    return json_response(render_project(project), status_code=status_code, headers=headers)


@router.get("/roles", response_model=RoleTable, responses=error_responses(401))
async def list_roles(principal: Annotated[Principal, needs(Scope.PROJECTS_READ)]) -> Response:
    """What each role may do: the table the checks use, so clients can grey out the rest."""
    return json_response({"roles": role_table()})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    responses=error_responses(401, 409, 415, 422),
)
async def create_project(
    body: ProjectCreate,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
    settings: SettingsDep,
) -> Response:
    """Create a project; the caller is its owner."""
    project = await project_service.create_project(
        db, settings=settings, caller_id=principal.user_id, data=body
    )
    return _project_response(project, status_code=status.HTTP_201_CREATED)


@router.get("", response_model=ProjectPage, responses=error_responses(401, 422))
async def list_projects(
    *,
    principal: Annotated[Principal, needs(Scope.PROJECTS_READ)],
    db: Db,
    archived: bool | None = None,
    listing: Annotated[Listing, Depends(project_listing)],
) -> Response:
    """The projects the caller belongs to, newest first; `archived` filters."""
    page = listing.page(bound_to={"member": str(principal.user_id), "archived": archived})
    rows = await project_service.list_projects(
        db, caller_id=principal.user_id, archived=archived, after=page.after, limit=page.limit
    )
    return page.response(rows, render_project)


@router.get("/{project_id}", response_model=ProjectRead, responses=error_responses(401, 404, 422))
async def get_project(
    project_id: uuid.UUID, principal: Annotated[Principal, needs(Scope.PROJECTS_READ)], db: Db
) -> Response:
    """One project the caller belongs to, with its ETag; anyone else gets 404."""
    project = await project_service.get_project(
        db, caller_id=principal.user_id, project_id=project_id
    )
    return _project_response(project)


@router.patch(
    "/{project_id}",
    response_model=ProjectRead,
    responses=error_responses(401, 403, 404, 412, 415, 422),
)
async def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
    if_match: IfMatch = None,
) -> Response:
    """Rename, describe, archive or unarchive (admin and up)."""
    project = await project_service.update_project(
        db,
        caller_id=principal.user_id,
        project_id=project_id,
        changes=body,
        if_match=tags(if_match),
    )
    return _project_response(project)


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 412, 422),
)
async def delete_project(
    project_id: uuid.UUID,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
    if_match: IfMatch = None,
) -> Response:
    """Delete the project with everything in it (the owner only)."""
    await project_service.delete_project(
        db, caller_id=principal.user_id, project_id=project_id, if_match=tags(if_match)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{project_id}/members",
    response_model=MemberList,
    responses=error_responses(401, 404, 422),
)
async def list_members(
    project_id: uuid.UUID, principal: Annotated[Principal, needs(Scope.PROJECTS_READ)], db: Db
) -> Response:
    """Every member with their role: the owner first, then by when they were added."""
    members = await project_service.list_members(
        db, caller_id=principal.user_id, project_id=project_id
    )
    return json_response({"items": [render_member(member) for member in members]})


@router.put(
    "/{project_id}/members/{username}",
    response_model=MemberRead,
    responses=error_responses(401, 403, 404, 409, 415, 422),
)
async def put_member(
    project_id: uuid.UUID,
    username: str,
    body: MemberPut,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
    settings: SettingsDep,
) -> Response:
    """Add a user with a role, or change a member's role."""
    member = await project_service.put_member(
        db,
        settings=settings,
        caller_id=principal.user_id,
        project_id=project_id,
        username=username,
        role=Role(body.role),
    )
    return json_response(render_member(member))


@router.delete(
    "/{project_id}/members/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def remove_member(
    project_id: uuid.UUID,
    username: str,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
) -> Response:
    """Remove a member, or leave (anyone but the owner)."""
    await project_service.remove_member(
        db, caller_id=principal.user_id, project_id=project_id, username=username
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{project_id}/transfer",
    response_model=ProjectRead,
    responses=error_responses(401, 403, 404, 409, 415, 422),
)
async def transfer_project(
    project_id: uuid.UUID,
    body: TransferRequest,
    principal: Annotated[Principal, needs(Scope.PROJECTS_WRITE)],
    db: Db,
) -> Response:
    """Make a member the owner; the old owner becomes an admin."""
    project = await project_service.transfer(
        db, caller_id=principal.user_id, project_id=project_id, username=body.username
    )
    return _project_response(project)
