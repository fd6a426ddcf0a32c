"""Hostile JSON bodies on every route that takes one, generated from the app's own OpenAPI
document and route table: a route added later is covered without anyone editing this file, or
fails until VALID_BODIES knows a body it accepts.

- a lone UTF-16 surrogate in any string of an otherwise valid body: 422 (a login: 401, as a
  wrong password, counted like one); in a key: 422 everywhere;
- nested 33 levels: 400; 32 levels: parsed (then 422 for the wrong shape); 5,000 levels: 400;
- and nothing in the database changed, whatever was refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from taskhub.access.grants import ANY_TOKEN
from taskhub.auth.dependencies import needs
from taskhub.db.schema import Base
from taskhub.http.bodies import LONE_SURROGATE
from taskhub.http.openapi import error_responses
from taskhub.http.routing import add_routes_of
from taskhub.main import create_app
from taskhub.schemas import InputModel
from taskhub.security import passwords
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem, create_task, make_user

PATH_PARAMETER = re.compile(r"\{(\w+)\}")
LOGIN = ("POST", f"{API}/auth/login")
SURROGATES = ("\ud800", "\udfff", "x\udc00y", "\ud83d")
CHANGED_TO = "tangerine-lantern-57"


@dataclass(frozen=True, order=True)
class JsonOperation:
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, values: dict[str, str]) -> str:
        return PATH_PARAMETER.sub(lambda match: values[match.group(1)], self.path)


def json_operations(app: FastAPI) -> list[JsonOperation]:
    """Every operation whose documented request body is JSON, checked against the route table:
    a route that parses a body (FastAPI's `body_field`) must be among them."""
    documented = {
        JsonOperation(method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    parsing = {
        JsonOperation(method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None
        for method in route.methods
    }
    assert parsing <= documented, parsing - documented
    return sorted(documented)


# A body each operation accepts, for a user who has `ids`. An operation missing here fails.
Body = Callable[[ApiUser], dict[str, Any]]
VALID_BODIES: dict[tuple[str, str], Body] = {
    ("POST", f"{API}/auth/register"): lambda _: {"username": "carol", "password": CHANGED_TO},
    LOGIN: lambda user: {"username": user.username, "password": user.password},
    ("POST", f"{API}/auth/refresh"): lambda user: {"refresh_token": user.refresh_token},
    ("POST", f"{API}/users/me/password"): lambda user: {
        "current_password": user.password,
        "new_password": CHANGED_TO,
    },
    ("POST", f"{API}/tasks"): lambda _: {"title": "a task", "description": "more", "labels": ["x"]},
    ("PATCH", f"{API}/tasks/{{task_id}}"): lambda _: {"title": "renamed", "labels": ["y", "z"]},
    ("POST", f"{API}/projects"): lambda _: {"name": "a project", "description": "more"},
    ("PATCH", f"{API}/projects/{{project_id}}"): lambda _: {"name": "renamed", "description": "d"},
    ("PUT", f"{API}/projects/{{project_id}}/members/{{username}}"): lambda _: {"role": "viewer"},
    ("POST", f"{API}/projects/{{project_id}}/transfer"): lambda user: {"username": user.username},
    ("POST", f"{API}/tasks/{{task_id}}/comments"): lambda _: {"body": "a comment"},
    ("PATCH", f"{API}/comments/{{comment_id}}"): lambda _: {"body": "edited"},
    ("POST", f"{API}/tokens"): lambda _: {"name": "a token", "scopes": ["tasks:read"]},
    ("POST", f"{API}/tokens/revoke"): lambda _: {"tokens": ["thp_not-a-token"]},
}


def nested(depth: int) -> bytes:
    """An object (level 1) whose `title` holds arrays nested down to `depth`."""
    return b'{"title": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def _spoiled(value: Any, surrogate: str) -> Any:
    """A string with the surrogate inside it; in a list of strings, the last one spoiled."""
    if isinstance(value, list):
        return [*value[:-1], _spoiled(value[-1], surrogate)]
    return value[:3] + surrogate + value[3:]


def with_surrogate(body: dict[str, Any], field: str, surrogate: str) -> bytes:
    spoiled = {**body, field: _spoiled(body[field], surrogate)}
    # ensure_ascii writes the surrogate as the escape a client would send: \ud800.
    return json.dumps(spoiled).encode()


async def database_snapshot(app: FastAPI) -> dict[str, list[Any]]:
    snapshot: dict[str, list[Any]] = {}
    for table in Base.metadata.sorted_tables:
        rows = await app.state.database.records(sa.select(table), {}, into=lambda *row: row)
        snapshot[table.name] = sorted(rows, key=repr)
    return snapshot


@pytest.fixture
async def ids(client: httpx.AsyncClient, alice: ApiUser) -> dict[str, str]:
    task = await create_task(client, alice, title="alice's task")
    project = await client.post(f"{API}/projects", json={"name": "alice's"}, headers=alice.headers)
    comment = await client.post(
        f"{API}/tasks/{task['id']}/comments", json={"body": "alice's"}, headers=alice.headers
    )
    return {
        "task_id": task["id"],
        "project_id": project.json()["id"],
        "username": "bob",
        "comment_id": comment.json()["id"],
    }


async def send(
    client: httpx.AsyncClient,
    operation: JsonOperation,
    values: dict[str, str],
    user: ApiUser,
    body: bytes,
) -> httpx.Response:
    headers = {**user.headers, "Content-Type": "application/json"}
    return await client.request(
        operation.method, operation.url(values), content=body, headers=headers
    )


def test_every_json_operation_has_a_valid_body(app: FastAPI) -> None:
    operations = json_operations(app)
    missing = [str(op) for op in operations if (op.method, op.path) not in VALID_BODIES]

    assert len(operations) >= 6, operations
    assert LOGIN in {(op.method, op.path) for op in operations}
    assert not missing, f"add a body each of these accepts to VALID_BODIES: {missing}"


def test_every_json_operation_documents_what_these_refusals_answer(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for operation in json_operations(app):
        responses = paths[operation.path][operation.method.lower()]["responses"]
        assert {"400", "422"} <= set(responses), operation
    assert "401" in paths[LOGIN[1]]["post"]["responses"]


async def test_a_lone_surrogate_in_any_string_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, ids: dict[str, str]
) -> None:
    before = await database_snapshot(app)
    assert before["user_account"]  # there is something that could change
    assert before["task"]
    failures = []
    for operation in json_operations(app):
        valid = VALID_BODIES[(operation.method, operation.path)](alice)
        expected = 401 if (operation.method, operation.path) == LOGIN else 422
        for field in valid:
            for surrogate in SURROGATES:
                body = with_surrogate(valid, field, surrogate)
                response = await send(client, operation, ids, alice, body)
                if response.status_code != expected:
                    failures.append(f"{operation} {field}: {response.status_code} {response.text}")
                elif expected == 422:
                    problem = assert_problem(response, 422)
                    locs = [error["loc"][:2] for error in problem["errors"]]
                    assert ["body", field] in locs, problem
                else:
                    assert response.json()["detail"] == "Incorrect username or password"
                    assert response.headers["www-authenticate"] == "Bearer"
    assert not failures, "lone surrogates not refused as the contract says:\n" + "\n".join(failures)
    assert await database_snapshot(app) == before


async def test_a_lone_surrogate_in_a_key_is_422_everywhere(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, ids: dict[str, str]
) -> None:
    before = await database_snapshot(app)
    for operation in json_operations(app):
        valid = VALID_BODIES[(operation.method, operation.path)](alice)
        body = json.dumps({**valid, "extra\ud800": "x"}).encode()

        response = await send(client, operation, ids, alice, body)

        problem = assert_problem(response, 422)
        assert problem["detail"] == LONE_SURROGATE, operation  # refused as such, at login too
        assert problem["errors"][0]["loc"] == ["body"], operation
    assert await database_snapshot(app) == before


@pytest.mark.parametrize(
    ("depth", "status"), [(32, 422), (33, 400), (5_000, 400)], ids=["32", "33", "5000"]
)
async def test_nesting_deeper_than_32_levels_is_400(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: ApiUser,
    ids: dict[str, str],
    depth: int,
    status: int,
) -> None:
    before = await database_snapshot(app)
    failures = []
    for operation in json_operations(app):
        response = await send(client, operation, ids, alice, nested(depth))
        if response.status_code != status:
            failures.append(f"{operation}: {response.status_code} {response.text}")
        elif status == 400:
            assert assert_problem(response, 400)["detail"].endswith("deeper than 32 levels")
    assert not failures, f"nesting {depth} deep:\n" + "\n".join(failures)
    assert await database_snapshot(app) == before


class WidgetCreate(InputModel):
    name: str


async def test_a_route_added_later_is_covered(database_url: str) -> None:
    """A new JSON operation joins the checks above by itself (and fails the VALID_BODIES check
    until a body is added for it), and its body is decoded the one way like every other."""
    application = create_app(make_settings(database_url))
    widgets = APIRouter(prefix=f"{API}/widgets", dependencies=[needs(ANY_TOKEN)])

    @widgets.post("", responses=error_responses(401, 415, 422))
    async def create_widget(body: WidgetCreate) -> dict[str, str]:
        return {"name": body.name}

    add_routes_of(application, widgets, prefix="")
    try:
        added = JsonOperation("POST", f"{API}/widgets")
        assert added in json_operations(application)
        assert (added.method, added.path) not in VALID_BODIES
        async with client_of(application) as http:
            # Signed in: without a token the answer is 401, before the body is judged.
            user = await make_user(http, "widget-maker")
            headers = {"Content-Type": "application/json", **user.headers}
            deep = await http.post(added.path, content=nested(33), headers=headers)
            spoiled = await http.post(added.path, content=b'{"name": "\\ud800"}', headers=headers)
        assert_problem(deep, 400)
        assert assert_problem(spoiled, 422)["errors"][0]["loc"] == ["body", "name"]
    finally:
        await application.state.database.dispose()


class TestLogin:
    async def test_a_lone_surrogate_counts_as_a_failed_attempt(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        """RATE_LIMIT_LOGIN is 10/minute: ten wrong passwords, then even the right one is 429."""
        headers = {"Content-Type": "application/json"}
        spoiled = json.dumps({"username": "alice", "password": alice.password + "\ud800"})
        for _ in range(10):
            response = await client.post(f"{API}/auth/login", content=spoiled, headers=headers)
            assert_problem(response, 401)

        right = await client.post(
            f"{API}/auth/login", json={"username": "alice", "password": alice.password}
        )

        assert_problem(right, 429)

    async def test_a_surrogate_password_is_checked_by_bcrypt_like_a_wrong_one(
        self, client: httpx.AsyncClient, alice: ApiUser, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No shortcut: the time taken tells nothing. A password with no UTF-8 form is checked
        as the empty password, which is nobody's (security.passwords)."""
        checked: list[str] = []
        verify = passwords._verify_sync

        def counting(password: str, password_hash: str) -> bool:
            checked.append(password)
            return verify(password, password_hash)

        monkeypatch.setattr(passwords, "_verify_sync", counting)

        response = await client.post(
            f"{API}/auth/login",
            content=json.dumps({"username": "alice", "password": "\ud800" * 8}),
            headers={"Content-Type": "application/json"},
        )

        assert_problem(response, 401)
        assert checked == [""]

    @pytest.mark.parametrize(
        "body",
        [
            b"username=alice&password=%ED%A0%80",
            b"username=alice&password=%FF%FE%FD",
            b"username=%ED%A0%80&password=whatever",
            b"username=al%FFice&password=whatever",
            b"username=alice&password=\xff\xfe",
            b"username=al\xed\xa0\x80ice&password=whatever",
        ],
    )
    async def test_a_form_with_bytes_that_are_not_utf8_is_a_wrong_password(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, body: bytes
    ) -> None:
        before = await database_snapshot(app)

        response = await client.post(
            f"{API}/auth/login",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        assert assert_problem(response, 401)["detail"] == "Incorrect username or password"
        assert await database_snapshot(app) == before
