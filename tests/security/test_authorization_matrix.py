"""Authorization matrix, generated from the app's own route table: a route added later is covered
without anyone editing this file.

- Without a token, every route but the public ones is a 401 problem with `WWW-Authenticate: Bearer`.
- Every protected route with a path parameter is probed by user B with user A's resource id, for
  every method: 404 (never 403, never 2xx), and A's resource is unchanged afterwards. Each path
  parameter name maps to a factory that creates A's resource; a name the map does not know fails
  the test, so a new resource type has to be added here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts

from taskhub.access.grants import ANY_TOKEN
from taskhub.auth.dependencies import needs
from taskhub.main import create_app
from taskhub.tables import Notification
from tests.conftest import make_settings
from tests.helpers import API, ApiUser, assert_problem, create_task

# Reachable without a token. Everything else must answer 401 to an anonymous caller.
# /metrics is an operations endpoint like /health and /ready (the contract's "Operations"):
# Prometheus scrapes it without a user's token, and it holds no user data.
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        f"{API}/auth/register",
        f"{API}/auth/login",
        f"{API}/auth/refresh",
        f"{API}/tokens/revoke",
    }
)
PUBLIC_PREFIXES = ("/docs",)
PATH_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, order=True)
class Endpoint:
    path: str
    method: str
    takes_body: bool

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(PATH_PARAMETER.findall(self.path))

    @property
    def is_public(self) -> bool:
        return self.path in PUBLIC_PATHS or self.path.startswith(PUBLIC_PREFIXES)

    def url(self, values: dict[str, str]) -> str:
        return PATH_PARAMETER.sub(lambda match: values[match.group(1)], self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app serves through an APIRoute, included routers expanded.

    Since FastAPI 0.137 `app.routes` holds one opaque entry per included router, so a plain
    `for route in app.routes` would see almost nothing; `iter_route_contexts` flattens them with
    their full (prefixed) paths.
    """
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        path = context.path
        assert isinstance(path, str)
        for method in context.methods or ():
            found.add(Endpoint(path, method, takes_body=route.body_field is not None))
    return sorted(found)


def protected(app: FastAPI) -> list[Endpoint]:
    return [endpoint for endpoint in endpoints(app) if not endpoint.is_public]


async def send(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    values: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"json": {}} if endpoint.takes_body else {}
    return await client.request(endpoint.method, endpoint.url(values), headers=headers, **body)


# --------------------------------------------------------------------------------------------
# A's resources, one factory per path parameter name
# --------------------------------------------------------------------------------------------


@dataclass
class Owner:
    """User A with the app and client needed to create and re-read A's resources."""

    app: FastAPI
    client: httpx.AsyncClient
    user: ApiUser

    async def get(self, url: str) -> Any:
        response = await self.client.get(url, headers=self.user.headers)
        assert response.status_code == 200, f"A could not read {url}: {response.text}"
        return response.json()


@dataclass(frozen=True)
class OwnedResource:
    """How to create one of A's resources (returns its id) and how A sees it (a snapshot)."""

    create: Callable[[Owner], Awaitable[str]]
    snapshot: Callable[[Owner, str], Awaitable[Any]]


async def create_task_of(owner: Owner) -> str:
    task = await create_task(
        owner.client,
        owner.user,
        title="A's private task",
        description="nobody else's business",
        due_at="2031-01-01T09:00:00Z",
    )
    task_id: str = task["id"]
    return task_id


async def snapshot_task(owner: Owner, task_id: str) -> Any:
    return await owner.get(f"{API}/tasks/{task_id}")


async def create_comment_of(owner: Owner) -> str:
    task_id = await create_task_of(owner)
    response = await owner.client.post(
        f"{API}/tasks/{task_id}/comments",
        json={"body": "A's private remark"},
        headers=owner.user.headers,
    )
    assert response.status_code == 201, response.text
    comment_id: str = response.json()["id"]
    return comment_id


async def snapshot_comment(owner: Owner, comment_id: str) -> Any:
    """A's comment as A sees it, found on whichever of A's tasks it is."""
    tasks = await owner.get(f"{API}/tasks?limit=100")
    for task in tasks["items"]:
        comments = await owner.get(f"{API}/tasks/{task['id']}/comments?limit=100")
        matching = [item for item in comments["items"] if item["id"] == comment_id]
        if matching:
            return task, matching[0]
    raise AssertionError(f"A's comment {comment_id} is gone")


async def create_notification_of(owner: Owner) -> str:
    """Reminders are made by the worker, not the API: insert one as the worker would."""
    task_id = await create_task_of(owner)
    notification_id = uuid.uuid4()
    await owner.app.state.database.execute(
        sa.insert(Notification).values(
            id=notification_id,
            user_id=uuid.UUID(owner.user.id),
            task_id=uuid.UUID(task_id),
            task_due_at=datetime(2031, 1, 1, 9, tzinfo=UTC),
            kind="task_due",
            message="A's private task is due soon",
            created_at=datetime.now(UTC),
        ),
        {},
    )
    return str(notification_id)


async def snapshot_notification(owner: Owner, notification_id: str) -> Any:
    page = await owner.get(f"{API}/notifications")
    matching = [item for item in page["items"] if item["id"] == notification_id]
    assert len(matching) == 1, f"A's notification {notification_id} is gone: {page}"
    return matching[0]


async def own_session_id(owner: Owner) -> str:
    """A's own session: the one A's access token belongs to."""
    sessions = await owner.get(f"{API}/users/me/sessions")
    current = [item["id"] for item in sessions["items"] if item["current"]]
    assert len(current) == 1, sessions
    session_id: str = current[0]
    return session_id


async def snapshot_sessions(owner: Owner, session_id: str) -> Any:
    sessions = await owner.get(f"{API}/users/me/sessions")
    assert session_id in {item["id"] for item in sessions["items"]}, sessions
    return sessions


async def create_project_of(owner: Owner) -> str:
    response = await owner.client.post(
        f"{API}/projects", json={"name": "A's private project"}, headers=owner.user.headers
    )
    assert response.status_code == 201, response.text
    project_id: str = response.json()["id"]
    return project_id


async def snapshot_project(owner: Owner, project_id: str) -> Any:
    members = await owner.get(f"{API}/projects/{project_id}/members")
    return await owner.get(f"{API}/projects/{project_id}"), members


async def own_username(owner: Owner) -> str:
    """A member's name: the one that A's project certainly has (A, its owner)."""
    return owner.user.username


async def snapshot_account(owner: Owner, _username: str) -> Any:
    return await owner.get(f"{API}/users/me")


async def create_token_of(owner: Owner) -> str:
    response = await owner.client.post(
        f"{API}/tokens", json={"name": "A's", "scopes": ["tasks:read"]}, headers=owner.user.headers
    )
    assert response.status_code == 201, response.text
    token_id: str = response.json()["id"]
    return token_id


async def snapshot_tokens(owner: Owner, token_id: str) -> Any:
    tokens = await owner.get(f"{API}/tokens")
    assert token_id in {item["id"] for item in tokens["items"]}, tokens
    return tokens


OWNED_RESOURCES: dict[str, OwnedResource] = {
    "project_id": OwnedResource(create_project_of, snapshot_project),
    "username": OwnedResource(own_username, snapshot_account),
    "task_id": OwnedResource(create_task_of, snapshot_task),
    "comment_id": OwnedResource(create_comment_of, snapshot_comment),
    "notification_id": OwnedResource(create_notification_of, snapshot_notification),
    "session_id": OwnedResource(own_session_id, snapshot_sessions),
    "token_id": OwnedResource(create_token_of, snapshot_tokens),
}


def unknown_parameters(routes: list[Endpoint]) -> list[str]:
    """Path parameters of protected routes that OWNED_RESOURCES has no factory for."""
    return sorted(
        {
            f"{{{name}}} in {endpoint.path}"
            for endpoint in routes
            for name in endpoint.parameters
            if name not in OWNED_RESOURCES
        }
    )


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


def is_problem(body: Any, status: int) -> bool:
    """What tests.helpers.assert_problem checks of a problem document's body."""
    return (
        isinstance(body, dict)
        and body.get("status") == status
        and body.get("type") == "about:blank"
        and isinstance(body.get("title"), str)
    )


async def test_every_protected_route_is_401_without_a_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    failures = []
    for endpoint in protected(app):
        values = {name: str(uuid.uuid4()) for name in endpoint.parameters}
        response = await send(client, endpoint, values)
        problems = []
        if response.status_code != 401:
            problems.append(f"status {response.status_code}")
        if response.headers.get("www-authenticate") != "Bearer":
            problems.append(f"WWW-Authenticate {response.headers.get('www-authenticate')!r}")
        if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            problems.append(f"content-type {response.headers.get('content-type')!r}")
        elif not is_problem(response.json(), 401):
            problems.append(f"body {response.text}")
        if problems:
            failures.append(f"{endpoint}: {', '.join(problems)}")
    assert not failures, "anonymous calls not refused with a 401 problem:\n" + "\n".join(failures)


async def test_every_id_route_hides_another_users_resource(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    owner = Owner(app, client, alice)
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in protected(app):
        if endpoint.parameters:
            by_path.setdefault(endpoint.path, []).append(endpoint)
    assert by_path, "no protected route with a path parameter: the route table was not read"

    unknown = unknown_parameters(protected(app))
    assert not unknown, (
        "path parameters with no factory in OWNED_RESOURCES (add one that creates user A's "
        f"resource and one that snapshots it): {', '.join(unknown)}"
    )

    ids: dict[str, str] = {}
    for name in sorted({name for group in by_path.values() for name in group[0].parameters}):
        ids[name] = await OWNED_RESOURCES[name].create(owner)

    async def snapshots() -> dict[str, Any]:
        return {name: await OWNED_RESOURCES[name].snapshot(owner, ids[name]) for name in ids}

    before = await snapshots()
    failures = []
    for group in by_path.values():
        for endpoint in group:
            response = await send(client, endpoint, ids, headers=bob.headers)
            if response.status_code == 422 and await refused_alike(client, endpoint, bob, response):
                pass  # the body is refused before any lookup, for a resource that exists or not
            elif response.status_code != 404:
                failures.append(f"{endpoint}: B got {response.status_code} {response.text}")
            else:
                assert_problem(response, 404)
            try:
                after = await snapshots()
            except AssertionError as gone:
                failures.append(f"{endpoint}: A's data is gone after B's call: {gone}")
                break
            if after != before:
                failures.append(f"{endpoint}: A's data changed: {before} -> {after}")
                before = after
    assert not failures, "another user's resource is reachable:\n" + "\n".join(failures)


async def refused_alike(
    client: httpx.AsyncClient, endpoint: Endpoint, user: ApiUser, response: httpx.Response
) -> bool:
    """Whether the same request about resources that do not exist gets the same answer: then a
    422 (the empty body the matrix sends) says nothing about A's resource."""
    unknown = {name: str(uuid.uuid4()) for name in endpoint.parameters}
    unknown.update({"username": "nobody-at-all"} if "username" in unknown else {})
    control = await send(client, endpoint, unknown, headers=user.headers)
    return control.status_code == response.status_code and control.json() == response.json()


def test_the_matrix_sees_the_real_routes(app: FastAPI) -> None:
    seen = {(endpoint.method, endpoint.path) for endpoint in endpoints(app)}
    for method in ("GET", "PATCH", "DELETE"):
        assert (method, f"{API}/tasks/{{task_id}}") in seen
    assert ("POST", f"{API}/notifications/{{notification_id}}/read") in seen
    assert ("DELETE", f"{API}/users/me/sessions/{{session_id}}") in seen
    assert ("POST", f"{API}/auth/login") in seen
    assert ("GET", "/health") in seen

    # Cross-check with the OpenAPI document: no documented operation escapes the matrix.
    documented = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented <= seen, documented - seen
    guarded = {(endpoint.method, endpoint.path) for endpoint in protected(app)}
    assert len(guarded) >= 13, guarded
    assert ("POST", f"{API}/auth/logout") in guarded
    assert ("POST", f"{API}/auth/login") not in guarded
    assert unknown_parameters(protected(app)) == []


def test_every_protected_route_documents_bearer_auth_and_no_public_one_does(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    bearer = [{"OAuth2PasswordBearer": []}]
    for endpoint in endpoints(app):
        operation = paths.get(endpoint.path, {}).get(endpoint.method.lower())
        if operation is None:  # not documented: /metrics, the docs pages
            continue
        expected = None if endpoint.is_public else bearer
        assert operation.get("security") == expected, endpoint
    scheme = app.openapi()["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == f"{API}/auth/login"


async def test_a_route_added_later_is_in_the_matrix(database_url: str) -> None:
    """A new protected route joins both checks by itself, and a new kind of id fails the
    ownership check until OWNED_RESOURCES learns how to create one."""
    application = create_app(make_settings(database_url))
    widgets = APIRouter(prefix=f"{API}/widgets", dependencies=[needs(ANY_TOKEN)])

    @widgets.get("/{widget_id}")
    async def get_widget(widget_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(widget_id)}

    application.include_router(widgets)
    try:
        added = Endpoint(f"{API}/widgets/{{widget_id}}", "GET", takes_body=False)
        assert added in protected(application)
        assert unknown_parameters(protected(application)) == [f"{{widget_id}} in {added.path}"]
    finally:
        await application.state.database.dispose()
