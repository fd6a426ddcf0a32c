"""What a personal access token may reach: its scopes, and what each route needs.

A route declares its need next to its authentication (`auth.dependencies.needs`): a scope, or
`SESSION` for the routes no token may use, or `ANY_TOKEN` for the routes every valid token may
use (`GET /users/me`). A session may do everything; a token what its scopes grant. What the
caller's role allows is decided afterwards, as for a session: a token's rights are its scopes
intersected with its user's role now (ADR 0016).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    COMMENTS_WRITE = "comments:write"
    PROJECTS_READ = "projects:read"
    PROJECTS_WRITE = "projects:write"
    NOTIFICATIONS_READ = "notifications:read"
    NOTIFICATIONS_WRITE = "notifications:write"
    WEBHOOKS_WRITE = "webhooks:write"
    CHANGES_READ = "changes:read"


# A write scope includes the read of the same resource.
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.TASKS_WRITE: frozenset({Scope.TASKS_READ}),
    Scope.PROJECTS_WRITE: frozenset({Scope.PROJECTS_READ}),
    Scope.NOTIFICATIONS_WRITE: frozenset({Scope.NOTIFICATIONS_READ}),
}


def granted_by(scopes: Iterable[Scope]) -> frozenset[Scope]:
    """Every scope that `scopes` grant, the reads their writes include."""
    given = frozenset(scopes)
    return given.union(*(_IMPLIED.get(scope, frozenset()) for scope in given))


@dataclass(frozen=True, slots=True)
class Need:
    """What a route needs of a token: `scope`, or nothing more than a valid token (`ANY_TOKEN`),
    or a session (`SESSION`: no token may use the route)."""

    name: str
    scope: Scope | None = None
    session_only: bool = False

    def allows(self, scopes: frozenset[Scope]) -> bool:
        """Whether a token granted `scopes` may use the route."""
        if self.session_only:
            return False
        return self.scope is None or self.scope in scopes


SESSION = Need("session", session_only=True)
ANY_TOKEN = Need("any token")
_BY_SCOPE = {scope: Need(scope.value, scope=scope) for scope in Scope}


def need(scope: Scope) -> Need:
    return _BY_SCOPE[scope]


ALL_NEEDS = (SESSION, ANY_TOKEN, *_BY_SCOPE.values())
