"""Every query about projects and their members. A project is reached only through the caller's
membership (`_VISIBLE`): a project they are not a member of is simply not found, and every write
repeats, in its WHERE clause, the roles that may make it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from taskhub import pagination
from taskhub.access.roles import Action, Role
from taskhub.access.scope import EVERY_OWN_MEMBERSHIP, OWN_MEMBERSHIP, caller_may
from taskhub.db.runner import Queries, columns_of, selecting
from taskhub.pagination import Position
from taskhub.projects.schemas import MemberRecord, ProjectRecord
from taskhub.tables import Project, ProjectMember, User


@dataclass(frozen=True, slots=True)
class Person:
    """Someone named by username, and their role in the project if they are a member."""

    id: uuid.UUID
    role: str | None


_PROJECT = columns_of(ProjectRecord, Project, ProjectMember)
# A project's own columns: what a create inserts.
_STORED = tuple(column for column in _PROJECT if column.key != "role")
# The caller's membership: the one scope every project query starts from.
_CALLERS_MEMBERSHIP = and_(ProjectMember.project_id == Project.id, OWN_MEMBERSHIP)
_VISIBLE = select(*_PROJECT).join(ProjectMember, _CALLERS_MEMBERSHIP)
_THIS_PROJECT_ID = bindparam("project_id", type_=Project.id.type)
_THIS_PROJECT = Project.id == _THIS_PROJECT_ID
_GET_VISIBLE = _VISIBLE.where(_THIS_PROJECT)


_INSERT_PROJECT = insert(Project).values({column.key: bindparam(column.key) for column in _STORED})
_INSERT_MEMBER = insert(ProjectMember).values(
    project_id=bindparam("project_id"),
    user_id=bindparam("member_id"),
    role=bindparam("role"),
    added_at=bindparam("now"),
)
_COUNT_OWNED = select(func.count()).where(
    EVERY_OWN_MEMBERSHIP, ProjectMember.role == Role.OWNER.value
)
_COUNT_MEMBERS = select(func.count()).where(ProjectMember.project_id == bindparam("project_id"))
_DELETE_PROJECT = (
    delete(Project)
    .where(_THIS_PROJECT, caller_may(Action.OWN, project=_THIS_PROJECT_ID))
    .returning(Project.id)
)
_DELETE_PROJECT_AT = (
    delete(Project)
    .where(
        _THIS_PROJECT,
        caller_may(Action.OWN, project=_THIS_PROJECT_ID),
        Project.version == bindparam("expected"),
    )
    .returning(Project.id)
)


async def get_visible(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID
) -> ProjectRecord | None:
    params = {"caller_id": caller_id, "project_id": project_id}
    return await db.record(_GET_VISIBLE, params, ProjectRecord)


async def count_owned(db: Queries, *, caller_id: uuid.UUID) -> int:
    return int(await db.scalar(_COUNT_OWNED, {"caller_id": caller_id}))


async def count_members(db: Queries, *, project_id: uuid.UUID) -> int:
    return int(await db.scalar(_COUNT_MEMBERS, {"project_id": project_id}))


async def insert_project(db: Queries, *, values: dict[str, Any]) -> None:
    await db.execute(_INSERT_PROJECT, values)


async def insert_member(
    db: Queries, *, project_id: uuid.UUID, member_id: uuid.UUID, role: Role, now: datetime
) -> None:
    params = {"project_id": project_id, "member_id": member_id, "role": role.value, "now": now}
    await db.execute(_INSERT_MEMBER, params)


@lru_cache(maxsize=16)
def _update_statement(sent: frozenset[str], conditional: bool) -> Executable:
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in sent}
    values.update(updated_at=bindparam("now"), version=Project.version + 1)
    where = [_THIS_PROJECT, caller_may(Action.MANAGE, project=_THIS_PROJECT_ID)]
    if conditional:
        where.append(Project.version == bindparam("expected"))
    # The caller's role, unchanged by the update, is returned as it was read.
    role = cast(bindparam("caller_role", type_=String()), String())
    return (
        update(Project)
        .where(*where)
        .values(values)
        .returning(*columns_of(ProjectRecord, Project, role=role))
    )


async def update_project(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    project_id: uuid.UUID,
    role: str,
    values: dict[str, Any],
    expected_version: int | None,
    now: datetime,
) -> ProjectRecord | None:
    """Apply the change whole if the caller may still manage the project (and, with
    `expected_version`, if it is still that version); None otherwise."""
    params: dict[str, Any] = {
        "caller_id": caller_id,
        "project_id": project_id,
        "now": now,
        "caller_role": role,
    }
    params.update({f"new_{name}": value for name, value in values.items()})
    if expected_version is not None:
        params["expected"] = expected_version
    statement = _update_statement(frozenset(values), expected_version is not None)
    return await db.record(statement, params, ProjectRecord)


async def delete_project(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID, expected_version: int | None
) -> bool:
    params: dict[str, Any] = {"caller_id": caller_id, "project_id": project_id}
    if expected_version is None:
        return await db.count(_DELETE_PROJECT, params) > 0
    return await db.count(_DELETE_PROJECT_AT, {**params, "expected": expected_version}) > 0


def _page_statement(*, archived: bool | None, after: bool) -> Executable:
    query = _VISIBLE
    if archived is not None:
        query = query.where(Project.archived.is_(archived))
    keys = (Project.created_at, Project.id)
    if after:
        query = query.where(pagination.beyond(keys, descending=True))
    return query.order_by(*pagination.directed(keys, descending=True)).limit(bindparam("limit"))


_PAGES = {
    (archived, after): _page_statement(archived=archived, after=after)
    for archived in (None, False, True)
    for after in (False, True)
}


async def list_visible(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    archived: bool | None,
    after: Position | None,
    limit: int,
) -> list[ProjectRecord]:
    """The caller's projects, newest first, keyset by (created_at, id)."""
    params: dict[str, Any] = {"caller_id": caller_id, "limit": limit}
    if after is not None:
        params.update(after_key=after.key, after_id=after.last_id)
    return await db.records(_PAGES[archived, after is not None], params, ProjectRecord)


_MEMBERS = (
    select(*columns_of(MemberRecord, ProjectMember, User))
    .join(User, User.id == ProjectMember.user_id)
    .where(ProjectMember.project_id == bindparam("project_id"))
    .order_by(
        case((ProjectMember.role == Role.OWNER.value, 0), else_=1),
        ProjectMember.added_at,
        ProjectMember.user_id,
    )
)
_MEMBER = _MEMBERS.where(ProjectMember.user_id == bindparam("member_id"))
# Key-share locked: the person cannot be deleted (their account) until the member write that
# names them commits, and one deleted meanwhile is simply not found.
_PERSON = (
    select(*selecting(Person, User.id, ProjectMember.role))
    .outerjoin(
        ProjectMember,
        and_(
            ProjectMember.user_id == User.id,
            ProjectMember.project_id == bindparam("project_id"),
        ),
    )
    .where(User.username == bindparam("username"))
    .with_for_update(read=True, key_share=True, of=User)
)
# Every change of membership locks the project row first, only where the caller is a member:
# member writes, transfers and account deletions of one project then run one after the other,
# and the roles they read after the lock are the ones their writes find.
_LOCK_FOR_MEMBERSHIP = (
    select(Project.id)
    .where(_THIS_PROJECT, caller_may(Action.SEE, project=_THIS_PROJECT_ID))
    .with_for_update(of=Project)
)
_CALLERS_ROLE = select(ProjectMember.role).where(
    ProjectMember.project_id == bindparam("project_id"),
    OWN_MEMBERSHIP,
)
# Named apart from the columns: an UPDATE may not bind a parameter under a column's name.
_THIS_MEMBER = (
    ProjectMember.project_id == bindparam("in_project"),
    ProjectMember.user_id == bindparam("member_id"),
)


def _member_write_allowed(action: Action | None) -> list[ColumnElement[bool]]:
    """What a member write repeats in its WHERE clause: the target's role is one `action`
    reaches (below admin for MANAGE, below owner for OWN; never the owner), and the caller
    still holds a role that may take it. `None` is leaving: the member themselves, not the
    owner."""
    if action is None:
        return [ProjectMember.role != Role.OWNER.value]
    ceiling = Role.ADMIN if action is Action.MANAGE else Role.OWNER
    targets = [literal(role.value) for role in Role if role.rank < ceiling.rank]
    return [
        ProjectMember.role.in_(targets),
        caller_may(action, project=bindparam("in_project")),
    ]


@lru_cache(maxsize=8)
def _set_role_statement(action: Action) -> Executable:
    return (
        update(ProjectMember)
        .where(*_THIS_MEMBER, *_member_write_allowed(action))
        .values(role=bindparam("role"))
        .returning(ProjectMember.user_id)
    )


@lru_cache(maxsize=8)
def _remove_member_statement(action: Action | None) -> Executable:
    return (
        delete(ProjectMember)
        .where(*_THIS_MEMBER, *_member_write_allowed(action))
        .returning(ProjectMember.user_id)
    )


_HAND_OVER = (
    update(ProjectMember)
    .where(*_THIS_MEMBER, ProjectMember.role == bindparam("from_role"))
    .values(role=bindparam("to_role"))
    .returning(ProjectMember.user_id)
)


async def lock_for_membership_change(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID
) -> str | None:
    """Lock the project for a change of its members and read the caller's role after the lock
    (None: not a member, the project is not found)."""
    params = {"caller_id": caller_id, "project_id": project_id}
    if await db.scalar(_LOCK_FOR_MEMBERSHIP, params) is None:
        return None
    # A statement of its own, after the lock: it sees what a write that held the lock committed.
    role: str | None = await db.scalar(_CALLERS_ROLE, params)
    return role


async def list_members(db: Queries, *, project_id: uuid.UUID) -> list[MemberRecord]:
    return await db.records(_MEMBERS, {"project_id": project_id}, MemberRecord)


async def get_member(
    db: Queries, *, project_id: uuid.UUID, member_id: uuid.UUID
) -> MemberRecord | None:
    params = {"project_id": project_id, "member_id": member_id}
    return await db.record(_MEMBER, params, MemberRecord)


async def find_person(db: Queries, *, project_id: uuid.UUID, username: str) -> Person | None:
    params = {"project_id": project_id, "username": username}
    return await db.record(_PERSON, params, Person)


async def set_role(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    action: Action,
    project_id: uuid.UUID,
    member_id: uuid.UUID,
    role: Role,
) -> bool:
    """Change a member's role, if `action` reaches their role and the caller may take it."""
    params = {
        "in_project": project_id,
        "member_id": member_id,
        "caller_id": caller_id,
        "role": role.value,
    }
    return await db.count(_set_role_statement(action), params) > 0


async def remove_member(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    action: Action | None,
    project_id: uuid.UUID,
    member_id: uuid.UUID,
) -> bool:
    """Remove a member, if `action` reaches their role and the caller may take it (`None`:
    they leave)."""
    params = {"in_project": project_id, "member_id": member_id, "caller_id": caller_id}
    return await db.count(_remove_member_statement(action), params) > 0


async def hand_over(
    db: Queries, *, project_id: uuid.UUID, member_id: uuid.UUID, from_role: str, to_role: Role
) -> bool:
    """Move one member from `from_role` to `to_role`; False if they no longer hold `from_role`."""
    params = {
        "in_project": project_id,
        "member_id": member_id,
        "from_role": from_role,
        "to_role": to_role.value,
    }
    return await db.count(_HAND_OVER, params) > 0
