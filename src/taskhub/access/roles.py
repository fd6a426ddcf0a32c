"""What each role may do in a project: the one table that both the checks and
`GET /projects/roles` read."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """From least to most; each may do what the roles before it may."""

    VIEWER = "viewer"
    COMMENTER = "commenter"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {role: rank for rank, role in enumerate(Role)}


class Action(enum.StrEnum):
    SEE = "see the project, its members, its tasks and their comments"
    COMMENT = "comment on its tasks; edit and delete their own comments"
    WRITE_TASKS = "create, change, assign, move and delete its tasks"
    MANAGE = (
        "delete anyone's comment; rename, describe, archive the project; "
        "add, remove and change members whose role is below admin"
    )
    OWN = "make or unmake admins, transfer ownership, delete the project"


# The least role that may take each action.
LEAST_ROLE: dict[Action, Role] = {
    Action.SEE: Role.VIEWER,
    Action.COMMENT: Role.COMMENTER,
    Action.WRITE_TASKS: Role.EDITOR,
    Action.MANAGE: Role.ADMIN,
    Action.OWN: Role.OWNER,
}


def may(role: Role, action: Action) -> bool:
    return role.rank >= LEAST_ROLE[action].rank


def roles_allowed(action: Action) -> tuple[str, ...]:
    """The stored role names that may take `action`: what a write's WHERE clause admits."""
    return tuple(role.value for role in Role if may(role, action))


def role_table() -> list[dict[str, object]]:
    """`GET /projects/roles`: every role with the actions it may take, most powerful first."""
    return [
        {
            "role": role.value,
            "actions": [action.name.lower() for action in Action if may(role, action)],
        }
        for role in reversed(Role)
    ]
