"""The role x route matrix, generated from the app's route table: for every route under
/projects and every role (and a non-member, and a removed member), the expected outcome comes
from the roles table the checks use. A refused request changes nothing. A route added without an
entry in ACTIONS fails `test_every_project_route_is_in_the_matrix`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskhub.access.roles import LEAST_ROLE, Action, Role, may
from taskhub.main import create_app
from taskhub.tables import Project
from tests.conftest import make_settings
from tests.helpers import assert_problem
from tests.projects.helpers import ACTORS, PROJECTS, People, Team


@dataclass(frozen=True)
class Case:
    """One request on a team's project, the action it needs, and its status when allowed."""

    action: Action | None  # None: anyone signed in (the roles table itself)
    request: Callable[[Team], tuple[str, str, dict[str, Any] | None]]
    allowed: int
    # A member who leaves needs no right: removing oneself is allowed to every member but the owner.
    target: str | None = None


# Keyed by route name: one entry per route under /projects.
ACTIONS: dict[str, Case] = {
    "list_roles": Case(None, lambda t: ("GET", f"{PROJECTS}/roles", None), 200),
    "create_project": Case(None, lambda t: ("POST", PROJECTS, {"name": "Mine"}), 201),
    "list_projects": Case(None, lambda t: ("GET", PROJECTS, None), 200),
    "get_project": Case(Action.SEE, lambda t: ("GET", t.url, None), 200),
    "list_members": Case(Action.SEE, lambda t: ("GET", f"{t.url}/members", None), 200),
    "update_project": Case(Action.MANAGE, lambda t: ("PATCH", t.url, {"name": "Renamed"}), 200),
    "put_member": Case(
        Action.MANAGE,
        lambda t: ("PUT", f"{t.url}/members/newcomer", {"role": "editor"}),
        200,
    ),
    "remove_member": Case(
        Action.MANAGE, lambda t: ("DELETE", f"{t.url}/members/victim", None), 204, "victim"
    ),
    "transfer_project": Case(
        Action.OWN, lambda t: ("POST", f"{t.url}/transfer", {"username": "victim"}), 200
    ),
    "delete_project": Case(Action.OWN, lambda t: ("DELETE", t.url, None), 204),
}
# Changes that need the owner whatever the route's base action: admins are the owner's to make.
EXTRA_CASES: dict[str, Case] = {
    "put_member: make an admin": Case(
        Action.OWN, lambda t: ("PUT", f"{t.url}/members/newcomer", {"role": "admin"}), 200
    ),
    "put_member: unmake an admin": Case(
        Action.OWN, lambda t: ("PUT", f"{t.url}/members/admin", {"role": "viewer"}), 200
    ),
    "remove_member: an admin": Case(
        Action.OWN, lambda t: ("DELETE", f"{t.url}/members/admin", None), 204, "admin"
    ),
}


def _project_routes(application: FastAPI) -> set[str]:
    return {
        route.name
        for route in application.routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1/projects")
    }


def test_every_project_route_is_in_the_matrix(database_url: str) -> None:
    routes = _project_routes(create_app(make_settings(database_url)))
    assert routes == set(ACTIONS), f"routes without a matrix entry: {routes - set(ACTIONS)}"


def expected_status(actor: str, case: Case) -> int:
    if case.action is None:
        return case.allowed
    if actor in ("non-member", "removed"):
        return 404
    if actor == case.target:
        return case.allowed
    return case.allowed if may(Role(actor), case.action) else 403


ALL_CASES = {**ACTIONS, **EXTRA_CASES}


@pytest.mark.parametrize("name", sorted(ALL_CASES))
async def test_each_role_gets_what_the_roles_table_says(
    app: FastAPI, client: httpx.AsyncClient, name: str
) -> None:
    case = ALL_CASES[name]
    people = People(client)
    await people.user("newcomer")
    team: Team | None = None
    for actor in ACTORS:
        team = team or await people.team()
        before = await people.snapshot(team)
        method, path, body = case.request(team)
        response = await client.request(
            method, path, json=body, headers=team.as_role(actor).headers
        )

        expected = expected_status(actor, case)
        assert response.status_code == expected, (name, actor, response.text)
        if expected == 403:
            assert case.action is not None
            assert LEAST_ROLE[case.action].value in assert_problem(response, 403)["detail"]
        if expected in (403, 404):
            assert await people.snapshot(team) == before, (name, actor)
        else:  # something changed: the next actor gets a team of its own
            await _clean_up(app, team)
            team = None


async def _clean_up(app: FastAPI, team: Team) -> None:
    """Every project made so far goes (the next team's owner must be under the quota)."""
    await app.state.database.execute(sa.delete(Project), {})
