"""The role x route matrix for a project's tasks and their comments, generated from the app's
route table: for every route under /tasks and /comments and every actor (a non-member, a removed
member, each role), the expected outcome comes from the roles table the checks use. A refused
request changes nothing (the project's tasks and the task's comments, as its owner sees them).
A route added without an entry in ACTIONS fails `test_every_task_and_comment_route_is_in_the_matrix`.
In an archived project every write is 403 for every role, and every read still 200."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskhub.access.roles import LEAST_ROLE, Action, Role, may
from taskhub.main import create_app
from taskhub.tables import Comment, Project
from tests.comments.helpers import comment_url, comments_url, make_comment
from tests.conftest import make_settings
from tests.helpers import API, ApiUser, assert_problem, create_task
from tests.projects.helpers import ACTORS, People, Team

TASKS = f"{API}/tasks"
NOT_MEMBERS = ("non-member", "removed")


@dataclass(frozen=True)
class Scene:
    """A team's project with one task, a comment of its owner's, and one of the actor's (as if
    written while they could: a removed member's comments stay)."""

    team: Team
    task_id: str
    owners_comment: str
    actors_comment: str

    @property
    def task_url(self) -> str:
        return f"{TASKS}/{self.task_id}"


@dataclass(frozen=True)
class Case:
    """One request about a project task, the action it needs, and its status when allowed."""

    action: Action
    request: Callable[[Scene], tuple[str, str, dict[str, Any] | None]]
    allowed: int
    # Only the author may: the owner (who wrote the comment) is allowed, every other member 403.
    author_only: bool = False


# Keyed by route name: one entry per route under /tasks and /comments.
ACTIONS: dict[str, Case] = {
    "list_tasks": Case(
        Action.SEE, lambda s: ("GET", f"{TASKS}?project_id={s.team.project_id}", None), 200
    ),
    "get_task": Case(Action.SEE, lambda s: ("GET", s.task_url, None), 200),
    "create_task": Case(
        Action.WRITE_TASKS,
        lambda s: ("POST", TASKS, {"title": "new", "project_id": s.team.project_id}),
        201,
    ),
    "update_task": Case(Action.WRITE_TASKS, lambda s: ("PATCH", s.task_url, {"title": "x"}), 200),
    "delete_task": Case(Action.WRITE_TASKS, lambda s: ("DELETE", s.task_url, None), 204),
    "list_comments": Case(Action.SEE, lambda s: ("GET", comments_url(s.task_id), None), 200),
    "create_comment": Case(
        Action.COMMENT, lambda s: ("POST", comments_url(s.task_id), {"body": "hello"}), 201
    ),
    # The actor's own comment: an author edits and deletes it while they may comment.
    "update_comment": Case(
        Action.COMMENT,
        lambda s: ("PATCH", comment_url(s.actors_comment), {"body": "edited"}),
        200,
    ),
    "delete_comment": Case(
        Action.COMMENT, lambda s: ("DELETE", comment_url(s.actors_comment), None), 204
    ),
}
# The owner's comment, acted on by everyone: nobody but its author edits it; admins delete it.
EXTRA_CASES: dict[str, Case] = {
    "update_comment: someone else's": Case(
        Action.COMMENT,
        lambda s: ("PATCH", comment_url(s.owners_comment), {"body": "edited"}),
        200,
        author_only=True,
    ),
    "delete_comment: someone else's": Case(
        Action.MANAGE, lambda s: ("DELETE", comment_url(s.owners_comment), None), 204
    ),
}
ALL_CASES = {**ACTIONS, **EXTRA_CASES}


def _task_and_comment_routes(application: FastAPI) -> set[str]:
    return {
        route.name
        for route in application.routes
        if isinstance(route, APIRoute) and route.path.startswith((TASKS, f"{API}/comments"))
    }


def test_every_task_and_comment_route_is_in_the_matrix(database_url: str) -> None:
    routes = _task_and_comment_routes(create_app(make_settings(database_url)))
    assert routes == set(ACTIONS), f"routes without a matrix entry: {routes ^ set(ACTIONS)}"


def expected_status(actor: str, case: Case, *, archived: bool = False) -> int:
    if actor in NOT_MEMBERS:
        return 404
    if archived and case.action is not Action.SEE:
        return 403
    if case.author_only and actor != "owner":
        return 403
    return case.allowed if may(Role(actor), case.action) else 403


def refusal_reason(actor: str, case: Case) -> str:
    """What the 403's detail names: the least role that would do, the author rule, or the archive."""
    if case.author_only and actor != "owner":
        return "author"
    if not may(Role(actor), case.action):
        return LEAST_ROLE[case.action].value
    return "archived"


class Stage:
    """Builds scenes, and reads what a refused request must leave as it was."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.people = People(client)

    async def team(self, *, archived: bool) -> tuple[Team, str, str]:
        team = await self.people.team()
        task = await create_task(self.client, team.owner, project_id=team.project_id)
        comment = await make_comment(self.client, team.owner, task["id"], "the owner's")
        if archived:
            response = await self.client.patch(
                team.url, json={"archived": True}, headers=team.owner.headers
            )
            assert response.status_code == 200, response.text
        return team, task["id"], comment["id"]

    async def comment_of(self, user: ApiUser, task_id: str) -> str:
        """A comment `user` wrote on the task, stored as the API would have stored it."""
        comment_id = uuid.uuid4()
        now = datetime.now(UTC)
        await self.app.state.database.execute(
            sa.insert(Comment).values(
                id=comment_id,
                task_id=uuid.UUID(task_id),
                author_id=uuid.UUID(user.id),
                body=f"{user.username}'s",
                created_at=now,
                updated_at=now,
            ),
            {},
        )
        return str(comment_id)

    async def snapshot(self, scene: Scene) -> Any:
        owner = scene.team.owner.headers
        tasks = await self.client.get(
            TASKS, params={"project_id": scene.team.project_id, "limit": 100}, headers=owner
        )
        comments = await self.client.get(
            comments_url(scene.task_id), params={"limit": 100}, headers=owner
        )
        return tasks.status_code, tasks.json(), comments.status_code, comments.json()

    async def clean_up(self) -> None:
        """Every project made so far goes, with its tasks and comments."""
        await self.app.state.database.execute(sa.delete(Project), {})


async def run_matrix(app: FastAPI, client: httpx.AsyncClient, name: str, *, archived: bool) -> None:
    case = ALL_CASES[name]
    stage = Stage(app, client)
    built: tuple[Team, str, str] | None = None
    for actor in ACTORS:
        built = built or await stage.team(archived=archived)
        team, task_id, owners_comment = built
        user = team.as_role(actor)
        scene = Scene(team, task_id, owners_comment, await stage.comment_of(user, task_id))
        before = await stage.snapshot(scene)
        method, path, body = case.request(scene)

        response = await client.request(method, path, json=body, headers=user.headers)

        expected = expected_status(actor, case, archived=archived)
        assert response.status_code == expected, (name, actor, response.text)
        if expected == 403:
            detail = assert_problem(response, 403)["detail"]
            assert refusal_reason(actor, case) in detail, (name, actor, detail)
        elif expected == 404:
            assert_problem(response, 404)
        if expected in (403, 404) or case.action is Action.SEE:
            assert await stage.snapshot(scene) == before, (name, actor)
        else:  # something changed: the next actor gets a team of its own
            await stage.clean_up()
            built = None


@pytest.mark.parametrize("name", sorted(ALL_CASES))
async def test_each_role_gets_what_the_roles_table_says(
    app: FastAPI, client: httpx.AsyncClient, name: str
) -> None:
    await run_matrix(app, client, name, archived=False)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
async def test_in_an_archived_project_every_write_is_403_for_every_role(
    app: FastAPI, client: httpx.AsyncClient, name: str
) -> None:
    await run_matrix(app, client, name, archived=True)


def test_the_matrix_covers_every_role_on_every_route() -> None:
    cases = len(ALL_CASES) * len(ACTORS)
    assert {Role(actor) for actor in ACTORS if actor not in NOT_MEMBERS} == set(Role)
    assert cases == 77, cases  # (actor, route) pairs per matrix: normal and archived
