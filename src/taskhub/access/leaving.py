"""What leaving does: a member who leaves a project, or an account that is deleted, keeps no
assignment and no ownership that others rely on."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Uuid, bindparam, case, delete, or_, select, update

from taskhub.access.roles import Role
from taskhub.access.rules import lock_account
from taskhub.access.scope import EVERY_OWN_MEMBERSHIP, any_member
from taskhub.db.runner import Queries
from taskhub.tables import Project, ProjectMember, Task

# A change of the task like any other: a new version (ETag) and updated_at.
_UNASSIGN_LEAVER = (
    update(Task)
    .where(Task.project_id == bindparam("in_project"), Task.assignee_id == bindparam("member_id"))
    .values(assignee_id=None, version=Task.version + 1, updated_at=bindparam("now"))
)


async def unassign_member(
    db: Queries, *, project_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> None:
    """Someone who left the project is no longer assigned to any of its tasks."""
    params = {"in_project": project_id, "member_id": member_id, "now": now}
    await db.execute(_UNASSIGN_LEAVER, params)


_LEAVER = bindparam("leaver_id", type_=Uuid())
# One statement, one new version per task, whichever of the two the leaver was (or both). The
# foreign keys' SET NULL would do the same without a new version: the ETag would not change.
_FORGET_PERSON = (
    update(Task)
    .where(
        Task.project_id.is_not(None), or_(Task.assignee_id == _LEAVER, Task.creator_id == _LEAVER)
    )
    .values(
        assignee_id=case((Task.assignee_id == _LEAVER, None), else_=Task.assignee_id),
        creator_id=case((Task.creator_id == _LEAVER, None), else_=Task.creator_id),
        version=Task.version + 1,
        updated_at=bindparam("now"),
    )
)


async def forget_person(db: Queries, *, user_id: uuid.UUID, now: datetime) -> None:
    """A deleted account's project tasks stay: unassigned where it was the assignee, with no
    creator where it was the creator."""
    await db.execute(_FORGET_PERSON, {"leaver_id": user_id, "now": now})


_CALLERS_PROJECTS = select(ProjectMember.project_id).where(EVERY_OWN_MEMBERSHIP)
_LOCK_MEMBER_PROJECTS = (
    select(Project.id)
    .where(Project.id.in_(_CALLERS_PROJECTS.scalar_subquery()))
    .order_by(Project.id)
    .with_for_update(of=Project)
)


async def lock_memberships(tx: Queries, *, user_id: uuid.UUID) -> bool:
    """Lock every project the user is a member of, in one order (no deadlock between two
    callers), as a transfer or member change of each would, then the user (no membership of
    theirs can be added after that); False if one was added between the two, which is then not
    locked.

    A transfer that makes the user an owner therefore commits either before the ownership check
    that follows (which then sees it) or after the deletion (and finds no such member)."""
    params = {"caller_id": user_id}
    locked = frozenset(await tx.records(_LOCK_MEMBER_PROJECTS, params, _same_id))
    await lock_account(tx, user_id=user_id)
    return frozenset(await tx.records(_CALLERS_PROJECTS, params, _same_id)) <= locked


def _same_id(value: uuid.UUID) -> uuid.UUID:
    return value


_OWNED_WITH_OTHERS = (
    select(Project.name)
    .join(ProjectMember, ProjectMember.project_id == Project.id)
    .where(EVERY_OWN_MEMBERSHIP, ProjectMember.role == Role.OWNER.value, any_member(Project.id))
    .order_by(Project.name)
)
_DELETE_SOLE_PROJECTS = delete(Project).where(
    Project.id.in_(_CALLERS_PROJECTS.scalar_subquery()), ~any_member(Project.id)
)


async def owned_with_others(db: Queries, *, user_id: uuid.UUID) -> list[str]:
    """The names of the projects the user owns that have other members: an account deletion
    would leave them without an owner."""
    return await db.records(_OWNED_WITH_OTHERS, {"caller_id": user_id}, str)


async def delete_sole_projects(db: Queries, *, user_id: uuid.UUID) -> None:
    """The projects the user is the only member of go (with everything in them)."""
    await db.execute(_DELETE_SOLE_PROJECTS, {"caller_id": user_id})
