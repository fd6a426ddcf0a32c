"""Who may do what, as answers: 404 for what the caller cannot see, 403 naming the least role for
what their role does not allow, 403 for content of an archived project.

The reads here decide before a write; the write then repeats the rule in its own statement
(`access.scope`), so nothing decided here can be overtaken by a concurrent change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, Uuid, and_, bindparam, func, select

from taskhub.access.roles import LEAST_ROLE, Action, Role, may
from taskhub.access.scope import CALLER, OWN_MEMBERSHIP, VISIBLE_TASK, membership
from taskhub.context import current_reach
from taskhub.db.runner import Queries, selecting
from taskhub.errors import Forbidden, NotFound
from taskhub.tables import Project, ProjectMember, Task, User

PROJECT_NOT_FOUND = "Project not found"
TASK_NOT_FOUND = "Task not found"
ARCHIVED = "The project is archived: its content is read-only until an admin unarchives it"
RESTRICTED = "This token is restricted to its projects: it cannot create anything outside them"


def require_role(role: str, action: Action, *, archived: bool = False) -> None:
    """403 naming the least role that may take `action`, unless `role` may; and 403 when the
    action would write content of an archived project (`archived`)."""
    if not may(Role(role), action):
        raise Forbidden(f"Requires the {LEAST_ROLE[action].value} role in this project")
    if archived:
        raise Forbidden(ARCHIVED)


@dataclass(frozen=True, slots=True)
class TaskAccess:
    """What the caller may do with a task they can see: `role` is their role in its project
    (None for their personal task), `archived` whether that project is read-only."""

    id: uuid.UUID
    project_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    version: int
    role: str | None
    archived: bool

    def require(self, action: Action) -> None:
        """403 unless the caller may take `action` on the task; content of an archived project
        is read-only (reads excepted). Their personal task allows everything."""
        if self.role is not None:
            require_role(self.role, action, archived=self.archived and action is not Action.SEE)


_TASK_ACCESS = (
    select(
        *selecting(
            TaskAccess,
            Task.id,
            Task.project_id,
            Task.assignee_id,
            Task.version,
            ProjectMember.role,
            func.coalesce(Project.archived, False).label("archived"),
        )
    )
    .select_from(Task)
    .outerjoin(ProjectMember, and_(ProjectMember.project_id == Task.project_id, OWN_MEMBERSHIP))
    .outerjoin(Project, Project.id == Task.project_id)
    .where(Task.id == bindparam("task_id"), VISIBLE_TASK)
)
_TASK_ACCESS_FOR_UPDATE = _TASK_ACCESS.with_for_update(of=Task)


async def task_access(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, lock: bool = False
) -> TaskAccess:
    """The caller's rights on a task; 404 if they cannot see it. `lock` holds the task's row
    until the transaction ends."""
    statement = _TASK_ACCESS_FOR_UPDATE if lock else _TASK_ACCESS
    params = {"caller_id": caller_id, "task_id": task_id}
    access = await db.record(statement, params, TaskAccess)
    if access is None:
        raise NotFound(TASK_NOT_FOUND)
    return access


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    role: str
    archived: bool


_PROJECT_ACCESS = (
    select(*selecting(ProjectAccess, ProjectMember.role, Project.archived))
    .join(ProjectMember, and_(ProjectMember.project_id == Project.id, OWN_MEMBERSHIP))
    .where(Project.id == bindparam("project_id"))
)


async def require_in_project(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID, action: Action
) -> None:
    """404 unless the caller is a member of the project; 403 unless their role may take
    `action` on its content, which is read-only while it is archived."""
    params = {"caller_id": caller_id, "project_id": project_id}
    project = await db.record(_PROJECT_ACCESS, params, ProjectAccess)
    if project is None:
        raise NotFound(PROJECT_NOT_FOUND)
    require_role(project.role, action, archived=project.archived)


_LOCK_ACCOUNT = select(User.id).where(User.id == CALLER).with_for_update()


async def lock_account(db: Queries, *, user_id: uuid.UUID) -> None:
    """Hold the user's account row until the transaction ends: the memberships the user gets
    are then decided one transaction at a time (a new project under the owned-projects quota,
    an account deletion that must see every membership)."""
    await db.execute(_LOCK_ACCOUNT, {"caller_id": user_id})


_MEMBER_NOW = select(
    membership(
        of=bindparam("project_id", type_=Uuid()),
        who=bindparam("member_id", type_=Uuid()),
        locked=True,
    )
)


async def is_member(db: Queries, *, project_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    """Whether someone is a member of the project, their membership held (FOR SHARE) until the
    transaction ends: a removal cannot slip between this check and the write that relies on it
    (who may be assigned a task, say)."""
    params = {"project_id": project_id, "member_id": member_id}
    return bool(await db.scalar(_MEMBER_NOW, params))


@lru_cache(maxsize=32)
def _memberships_among(count: int) -> Executable:
    chosen = [bindparam(f"project_{i}", type_=Uuid()) for i in range(count)]
    return select(func.count()).where(OWN_MEMBERSHIP, ProjectMember.project_id.in_(chosen))


async def member_of_all(
    db: Queries, *, caller_id: uuid.UUID, project_ids: tuple[uuid.UUID, ...]
) -> bool:
    """Whether the caller belongs to every one of these (distinct) projects, in one statement."""
    if not project_ids:
        return True
    params: dict[str, Any] = {f"project_{i}": pid for i, pid in enumerate(project_ids)}
    params["caller_id"] = caller_id
    count = await db.scalar(_memberships_among(len(project_ids)), params)
    return int(count) == len(project_ids)


async def require_member_of_all(
    db: Queries, *, caller_id: uuid.UUID, project_ids: tuple[uuid.UUID, ...]
) -> None:
    """404 unless the caller belongs to every one of these (distinct) projects: a filter naming
    a project they cannot see is as unknown as the project."""
    if not await member_of_all(db, caller_id=caller_id, project_ids=project_ids):
        raise NotFound(PROJECT_NOT_FOUND)


def require_whole_account() -> None:
    """403 for a token restricted to projects that would create something outside them (a
    personal task, a project): what it made it could not reach."""
    if current_reach() is not None:
        raise Forbidden(RESTRICTED)
