"""What the caller may see and write, as SQL conditions every query starts from.

Each domain's statements take their scope from here: a task or project the caller may not see is
simply not found, and a write repeats in its WHERE clause the roles that may make it (locking the
memberships it relies on), so a membership changed meanwhile cannot be overtaken. A new rule
(a token's projects, say) is added here once, and every statement that starts from these follows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Uuid, bindparam, exists, literal, or_, select
from sqlalchemy.orm import aliased

from taskhub.access.roles import Action, roles_allowed
from taskhub.tables import Project, ProjectMember, Task

# Every statement names its caller under this one parameter.
CALLER = bindparam("caller_id", type_=Uuid())

# The caller's own memberships: the projects they belong to, whatever their role.
OWN_MEMBERSHIP = ProjectMember.user_id == CALLER
# The caller's personal tasks.
OWN_TASK = Task.owner_id == CALLER


def role_in(column: Any, action: Action) -> ColumnElement[bool]:
    """`column` holds a role that may take `action`. One bound value per role, not an
    "expanding" IN: the runner compiles each statement once."""
    allowed: ColumnElement[bool] = column.in_([literal(role) for role in roles_allowed(action)])
    return allowed


def membership(
    *,
    of: Any,
    who: Any = CALLER,
    action: Action | None = None,
    writable: bool = False,
    locked: bool = False,
    member: Any = ProjectMember,
) -> ColumnElement[bool]:
    """`who`'s membership (the caller's unless said) of project `of` (a column or parameter),
    with a role that may take `action` (any role without one); `writable`: of a live (not
    archived) project. `member` is an alias of the membership table where the statement writes
    that table itself (a correlated subquery must not be read as the row being written).

    A write locks the memberships it relies on (FOR SHARE, `locked`): a removal committed first
    makes the write find nothing, and a removal that comes later waits until the write has
    committed. So neither a removed member's write nor a removed assignee survives a removal.
    """
    query = (
        select(literal(1)).select_from(member).where(member.project_id == of, member.user_id == who)
    )
    if action is not None:
        query = query.where(role_in(member.role, action))
    if writable:
        query = query.join(Project, Project.id == member.project_id).where(
            Project.archived.is_(False)
        )
    if locked:
        query = query.with_for_update(read=True, of=member)
    # Correlated through `of` and `who` alone: a statement that joins the caller's membership
    # itself (to read their role) must not make this one read it from there.
    return query.correlate_except(member).exists()


def caller_may(action: Action, *, project: Any) -> ColumnElement[bool]:
    """The caller is a member of `project` with a role that may take `action`, read from an
    alias of the membership table: safe inside statements that write memberships."""
    return membership(of=project, action=action, member=aliased(ProjectMember))


# The one rule every task read starts from: the caller's personal tasks and their projects' tasks.
VISIBLE_TASK = or_(OWN_TASK, membership(of=Task.project_id))


def task_scope(action: Action | None = None) -> ColumnElement[bool]:
    """The rule on `Task` that every statement reaching a task repeats: the caller sees it (no
    `action`), or may take `action` on it: their personal task, or a task of a live project
    where their role may, with that membership locked until the transaction ends."""
    if action is None:
        return VISIBLE_TASK
    return or_(
        OWN_TASK,
        membership(of=Task.project_id, action=action, writable=True, locked=True),
    )


def may_create_in(project: Any, *, assignee: Any = None) -> list[ColumnElement[bool]]:
    """What a create in `project` repeats: the caller may write its tasks (membership locked),
    and the assignee, if one is named, is a member (locked too)."""
    conditions = [membership(of=project, action=Action.WRITE_TASKS, writable=True, locked=True)]
    if assignee is not None:
        conditions.append(membership(of=project, who=assignee, locked=True))
    return conditions


def any_member(project: Any) -> ColumnElement[bool]:
    """Someone other than the caller belongs to `project`."""
    other = aliased(ProjectMember)
    return exists().where(other.project_id == project, other.user_id != CALLER)
