"""The role x route matrix's token dimension, generated from the route table: every route's
declared need (`needs(...)`, read back from its dependencies) decides what a token gets there.

- A route that needs a scope: a token with every other scope gets 403 `insufficient_scope`
  naming it, with the RFC 6750 challenge, and nothing changes; a token with that scope alone
  passes the scope check (whatever the route answers next: 404 for an id nobody has, say).
- A session-only route: a token with every scope gets 403 with scope `session`.
- A route any token may use (`GET /users/me`): a token with one unrelated scope passes.

A route added later joins the matrix by itself: its need is read from the route.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskhub.access.grants import ANY_TOKEN, SESSION, Need, Scope, granted_by
from taskhub.auth.dependencies import NEED_OF
from taskhub.http.routing import declared
from taskhub.main import create_app
from tests.conftest import make_settings
from tests.helpers import API, ApiUser, assert_problem, bearer, make_token
from tests.security.test_hostile_bodies import VALID_BODIES, database_snapshot

SOME_ID = "0b0f4a4e-53a4-4d1e-9d5b-3f9c1b9f8a11"


def routes_with_needs(app: FastAPI) -> list[tuple[str, str, Need]]:
    """(method, path, need) of every route that declares one."""
    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        (authenticate,) = declared(route, NEED_OF) or (None,)
        if authenticate is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, NEED_OF[authenticate]))
    return sorted(found, key=lambda item: (item[1], item[0]))


ROUTES = routes_with_needs(create_app(make_settings("sqlite+aiosqlite:///:memory:")))


def scopes_without(scope: Scope) -> list[str]:
    """Every scope but those that grant `scope` (itself, and the write that includes it)."""
    return [other.value for other in Scope if scope not in granted_by([other])]


def request_for(method: str, path: str, user: ApiUser) -> tuple[str, dict[str, Any] | None]:
    url = path.replace("{username}", "nobody-at-all")
    for name in ("task_id", "project_id", "comment_id", "notification_id", "session_id"):
        url = url.replace(f"{{{name}}}", SOME_ID)
    url = url.replace("{token_id}", str(uuid.UUID(SOME_ID)))
    body_of = VALID_BODIES.get((method, path))
    return url, body_of(user) if body_of is not None else None


def test_every_route_declares_one_need_and_the_matrix_sees_them_all(app: FastAPI) -> None:
    needs = {(method, path): need for method, path, need in ROUTES}
    assert needs[("GET", f"{API}/users/me")] is ANY_TOKEN
    assert needs[("POST", f"{API}/tokens")] is SESSION
    assert needs[("POST", f"{API}/tasks")].scope is Scope.TASKS_WRITE
    assert needs[("GET", f"{API}/tasks/{{task_id}}/comments")].scope is Scope.TASKS_READ
    assert len(ROUTES) == len(routes_with_needs(app)) >= 28


@pytest.mark.parametrize(("method", "path", "need"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_a_token_gets_what_the_routes_declared_need_says(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI, method: str, path: str, need: Need
) -> None:
    url, body = request_for(method, path, alice)
    if need is ANY_TOKEN:
        token = (await make_token(client, alice, "notifications:read"))["token"]
        response = await client.request(method, url, json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        return
    if need.scope is None:  # session only: no scope is enough
        refused_with = [scope.value for scope in Scope]
    else:
        refused_with = scopes_without(need.scope)
    refused_token = (await make_token(client, alice, *refused_with))["token"]
    # Its first use is recorded (last_used_at); what the refusal changes is compared after it.
    await client.get(f"{API}/users/me", headers=bearer(refused_token))
    await app.state.token_use.settled()
    before = await database_snapshot(app)

    refused = await client.request(method, url, json=body, headers=bearer(refused_token))
    await app.state.token_use.settled()

    assert need.name in assert_problem(refused, 403)["detail"] or need is SESSION
    assert refused.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{need.name}"'
    )
    assert await database_snapshot(app) == before
    if need.scope is not None:
        allowed_token = (await make_token(client, alice, need.scope.value))["token"]
        allowed = await client.request(method, url, json=body, headers=bearer(allowed_token))
        assert "insufficient_scope" not in allowed.headers.get("www-authenticate", ""), allowed.text
        assert allowed.status_code != 401, allowed.text
