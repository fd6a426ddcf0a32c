"""What the caller may see and write, as SQL conditions every query starts from.

Each domain's statements take their scope from here: a task or project the caller may not see is
simply not found, and a write repeats in its WHERE clause the roles that may make it (locking the
memberships it relies on), so a membership changed meanwhile cannot be overtaken.

A personal access token restricted to some projects reaches only those: the caller's memberships
and personal tasks are narrowed here, once, by `REACH` (bound by the runner from the request, so
no statement can forget it), and every statement that starts from these follows (ADR 0016).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, exists, literal, or_, select
from sqlalchemy.orm import aliased

from taskhub.access.roles import Action, roles_allowed
from taskhub.db.runner import REACH_PARAMETER
from taskhub.tables import AccessTokenProject, Project, ProjectMember, Task

# Every statement names its caller under this one parameter.
CALLER = bindparam("caller_id", type_=Uuid())
# The restricted token the caller came with (its id), or NULL: bound by the runner.
REACH = bindparam(REACH_PARAMETER, value=None, type_=Uuid())
UNRESTRICTED = REACH.is_(None)


def within_reach(project: Any) -> ColumnElement[bool]:
    """`project` (a column or parameter) is one the caller's token may reach: any project for a
    session or an unrestricted token, one of its own projects for a restricted token."""
    listed = (
        exists()
        .where(AccessTokenProject.token_id == REACH, AccessTokenProject.project_id == project)
        # `project` comes from whichever statement this is nested in, however deep.
        .correlate_except(AccessTokenProject)
    )
    return or_(UNRESTRICTED, listed)


def task_within_reach(task: Any) -> ColumnElement[bool]:
    """The task `task` (an id column) is one the caller's token reaches: a restricted token
    reaches the tasks of its projects only (what is about a task, a reminder say, follows it)."""
    listed = (
        exists()
        .where(
            Task.id == task,
            AccessTokenProject.token_id == REACH,
            AccessTokenProject.project_id == Task.project_id,
        )
        .correlate_except(Task, AccessTokenProject)
    )
    return or_(UNRESTRICTED, listed)


# Every membership of the caller, whatever their token reaches: quotas and leaving count these.
EVERY_OWN_MEMBERSHIP = ProjectMember.user_id == CALLER
# Every personal task of the caller: the personal quota counts these.
EVERY_OWN_TASK = Task.owner_id == CALLER
# The caller's memberships that their token reaches: what they see of projects starts here.
OWN_MEMBERSHIP = and_(EVERY_OWN_MEMBERSHIP, within_reach(ProjectMember.project_id))
# The caller's personal tasks, which a token restricted to projects never reaches.
OWN_TASK = and_(EVERY_OWN_TASK, UNRESTRICTED)


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
    if who is CALLER:
        query = query.where(within_reach(of))
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
