"""Project rules: who may do what (the roles table), ownership, membership and quotas.

Every function starts from the caller's membership: a project they are not a member of is 404,
whatever they ask; a member whose role does not allow the action gets 403 naming the least role
that would; writes repeat the allowed roles in their WHERE clause, so a membership changed
meanwhile cannot be overtaken.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from taskhub import etags
from taskhub.access import leaving
from taskhub.access.roles import Action, Role
from taskhub.access.rules import (
    ARCHIVED,
    PROJECT_NOT_FOUND,
    lock_account,
    require_role,
    require_whole_account,
)
from taskhub.clock import new_id, utcnow
from taskhub.config import Settings
from taskhub.db.runner import Database, Queries
from taskhub.errors import Conflict, Forbidden, NotFound, PreconditionFailed
from taskhub.pagination import Position
from taskhub.projects import repository as project_repository
from taskhub.projects.repository import Person
from taskhub.projects.schemas import MemberRecord, ProjectCreate, ProjectRecord, ProjectUpdate

USER_NOT_FOUND = "No such user"
MEMBER_NOT_FOUND = "No such member"
OWNER_STAYS = "The owner cannot leave or be removed, nor change role: transfer ownership first"
MEMBERS_CHANGED = "The project's members changed meanwhile; retry"


def require(project: ProjectRecord, action: Action) -> None:
    """403 naming the least role that may take `action`, unless the caller's role may."""
    require_role(project.role, action)


def _check_if_match(project: ProjectRecord, if_match: Collection[str] | None) -> int | None:
    """The version a conditional write must still find; 412 if If-Match names another."""
    if if_match is None:
        return None
    if not etags.names(if_match, project.version):
        raise PreconditionFailed()
    return project.version


async def get_project(db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID) -> ProjectRecord:
    project = await project_repository.get_visible(db, caller_id=caller_id, project_id=project_id)
    if project is None:
        raise NotFound(PROJECT_NOT_FOUND)
    return project


async def create_project(
    db: Database, *, settings: Settings, caller_id: uuid.UUID, data: ProjectCreate
) -> ProjectRecord:
    """The caller owns the new project; past MAX_PROJECTS_PER_USER owned, 409 and nothing made."""
    require_whole_account()
    now = utcnow()
    project_id = new_id()
    async with db.transaction() as tx:
        await lock_account(tx, user_id=caller_id)
        owned = await project_repository.count_owned(tx, caller_id=caller_id)
        if owned >= settings.MAX_PROJECTS_PER_USER:
            raise Conflict(
                f"MAX_PROJECTS_PER_USER reached: you own {owned} projects, the limit is "
                f"{settings.MAX_PROJECTS_PER_USER}"
            )
        values = {
            "id": project_id,
            "name": data.name,
            "description": data.description,
            "archived": False,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        await project_repository.insert_project(tx, values=values)
        await project_repository.insert_member(
            tx, project_id=project_id, member_id=caller_id, role=Role.OWNER, now=now
        )
        return await get_project(tx, caller_id=caller_id, project_id=project_id)


async def list_projects(
    db: Queries, *, caller_id: uuid.UUID, archived: bool | None, after: Position | None, limit: int
) -> list[ProjectRecord]:
    """The caller's projects, newest first, from `after` on."""
    return await project_repository.list_visible(
        db, caller_id=caller_id, archived=archived, after=after, limit=limit
    )


async def update_project(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    project_id: uuid.UUID,
    changes: ProjectUpdate,
    if_match: Collection[str] | None,
) -> ProjectRecord:
    """Rename, describe, archive or unarchive (admin and up); whole or not at all."""
    project = await get_project(db, caller_id=caller_id, project_id=project_id)
    require(project, Action.MANAGE)
    values: dict[str, Any] = {name: getattr(changes, name) for name in changes.model_fields_set}
    stays_archived = values.get("archived", project.archived)
    if stays_archived and project.archived and values.keys() & {"name", "description"}:
        raise Forbidden(ARCHIVED)
    expected = _check_if_match(project, if_match)
    if not values:
        return project
    updated = await project_repository.update_project(
        db,
        caller_id=caller_id,
        project_id=project_id,
        role=project.role,
        values=values,
        expected_version=expected,
        now=utcnow(),
    )
    if updated is None:  # changed, or the caller's membership changed, since it was read
        raise await _why_refused(
            db, caller_id=caller_id, project_id=project_id, action=Action.MANAGE
        )
    return updated


async def _why_refused(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID, action: Action
) -> Exception:
    project = await get_project(db, caller_id=caller_id, project_id=project_id)
    require(project, action)
    return PreconditionFailed()


async def delete_project(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID, if_match: Collection[str] | None
) -> None:
    """The owner only; its members go with it."""
    project = await get_project(db, caller_id=caller_id, project_id=project_id)
    require(project, Action.OWN)
    expected = _check_if_match(project, if_match)
    if not await project_repository.delete_project(
        db, caller_id=caller_id, project_id=project_id, expected_version=expected
    ):
        raise await _why_refused(db, caller_id=caller_id, project_id=project_id, action=Action.OWN)


async def list_members(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID
) -> list[MemberRecord]:
    """Every member, owner first, then by when they were added."""
    await get_project(db, caller_id=caller_id, project_id=project_id)
    return await project_repository.list_members(db, project_id=project_id)


def _action_on(person: Person | None, *, giving: Role | None = None) -> Action:
    """What changing or removing `person` (giving them a role) takes: admins are made, unmade
    and removed by the owner alone (and the owner by nobody, which only the owner learns: 409);
    members below admin by admins too. Unknown people take the least that could reach them."""
    roles = {giving.value if giving else None, person.role if person else None}
    return Action.OWN if roles & {Role.ADMIN.value, Role.OWNER.value} else Action.MANAGE


async def _lock_for_membership_change(
    tx: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID
) -> str:
    """The caller's role, read after the project is locked for a change of its members: what
    the writes after it find, whatever ran concurrently (404 if not a member)."""
    role = await project_repository.lock_for_membership_change(
        tx, caller_id=caller_id, project_id=project_id
    )
    if role is None:
        raise NotFound(PROJECT_NOT_FOUND)
    return role


async def put_member(
    db: Database,
    *,
    settings: Settings,
    caller_id: uuid.UUID,
    project_id: uuid.UUID,
    username: str,
    role: Role,
) -> MemberRecord:
    """Add someone with a role, or change a member's role (`added_at` kept).

    Answers in the contract's order: 404 project, 403 for the caller's role (for the role asked,
    then for the target's), 404 unknown user, 409 owner or quota."""
    async with db.transaction() as tx:
        caller_role = await _lock_for_membership_change(
            tx, caller_id=caller_id, project_id=project_id
        )
        person = await project_repository.find_person(
            tx, project_id=project_id, username=username.lower()
        )
        action = _action_on(person, giving=role)
        require_role(caller_role, action)
        if person is None:
            raise NotFound(USER_NOT_FOUND)
        if person.role == Role.OWNER.value:
            raise Conflict(OWNER_STAYS)
        if person.role is None:
            await _add_member(
                tx, settings=settings, project_id=project_id, person=person, role=role
            )
        elif not await project_repository.set_role(
            tx,
            caller_id=caller_id,
            action=action,
            project_id=project_id,
            member_id=person.id,
            role=role,
        ):  # unreachable while the lock holds; the statement says the rule once more
            raise Conflict(MEMBERS_CHANGED)
        member = await project_repository.get_member(tx, project_id=project_id, member_id=person.id)
    assert member is not None  # noqa: S101 - written in the same transaction
    return member


async def _add_member(
    tx: Queries, *, settings: Settings, project_id: uuid.UUID, person: Person, role: Role
) -> None:
    members = await project_repository.count_members(tx, project_id=project_id)
    if members >= settings.MAX_MEMBERS_PER_PROJECT:
        raise Conflict(
            f"MAX_MEMBERS_PER_PROJECT reached: the project has {members} members, "
            f"the limit is {settings.MAX_MEMBERS_PER_PROJECT}"
        )
    await project_repository.insert_member(
        tx, project_id=project_id, member_id=person.id, role=role, now=utcnow()
    )


async def remove_member(
    db: Database, *, caller_id: uuid.UUID, project_id: uuid.UUID, username: str
) -> None:
    """Anyone may leave; admins remove members below admin, the owner removes admins too. The
    member's assignments in the project become null in the same transaction."""
    async with db.transaction() as tx:
        caller_role = await _lock_for_membership_change(
            tx, caller_id=caller_id, project_id=project_id
        )
        person = await project_repository.find_person(
            tx, project_id=project_id, username=username.lower()
        )
        leaves = person is not None and person.id == caller_id
        action = None if leaves else _action_on(person)
        if action is not None:
            require_role(caller_role, action)
        if person is None or person.role is None:
            raise NotFound(MEMBER_NOT_FOUND)
        if person.role == Role.OWNER.value:
            raise Conflict(OWNER_STAYS)
        if not await project_repository.remove_member(
            tx, caller_id=caller_id, action=action, project_id=project_id, member_id=person.id
        ):  # unreachable while the lock holds; the statement says the rule once more
            raise Conflict(MEMBERS_CHANGED)
        await leaving.unassign_member(tx, project_id=project_id, member_id=person.id, now=utcnow())


async def transfer(
    db: Database, *, caller_id: uuid.UUID, project_id: uuid.UUID, username: str
) -> ProjectRecord:
    """The owner hands the project to a member and becomes an admin, in one transaction: the
    project never has no owner, and never two (the database refuses a second)."""
    async with db.transaction() as tx:
        caller_role = await _lock_for_membership_change(
            tx, caller_id=caller_id, project_id=project_id
        )
        require_role(caller_role, Action.OWN)
        person = await project_repository.find_person(
            tx, project_id=project_id, username=username.lower()
        )
        if person is None or person.role is None:
            raise NotFound(MEMBER_NOT_FOUND)
        if person.id != caller_id:
            await _hand_over(
                tx, project_id=project_id, owner_id=caller_id, heir_id=person.id, role=person.role
            )
        return await get_project(tx, caller_id=caller_id, project_id=project_id)


async def _hand_over(
    tx: Queries, *, project_id: uuid.UUID, owner_id: uuid.UUID, heir_id: uuid.UUID, role: str
) -> None:
    stepped_down = await project_repository.hand_over(
        tx, project_id=project_id, member_id=owner_id, from_role="owner", to_role=Role.ADMIN
    )
    took_over = stepped_down and await project_repository.hand_over(
        tx, project_id=project_id, member_id=heir_id, from_role=role, to_role=Role.OWNER
    )
    if not took_over:  # unreachable while the lock holds: nothing happens
        raise Conflict(MEMBERS_CHANGED)
