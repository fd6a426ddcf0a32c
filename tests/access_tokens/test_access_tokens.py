"""Personal access tokens (contract: "Personal access tokens"): made, used, limited, listed and
ended as the contract says; what a token may do is its scopes intersected with its user's role
now, within its projects."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.auth.access_tokens import TokenUse
from taskhub.clock import utcnow
from taskhub.main import create_app
from taskhub.security.access_tokens import new_token, well_formed
from taskhub.tables import AccessToken, Notification, Task
from tests.conftest import client_of, make_settings
from tests.db.test_round_trips import statements
from tests.helpers import (
    API,
    ApiUser,
    assert_problem,
    bearer,
    create_task,
    make_token,
    make_user,
)
from tests.projects.helpers import add_member, make_project

TOKENS = f"{API}/tokens"
FORM = re.compile(r"^thp_[0-9A-Za-z]{38}$")


async def stored_tokens(app: FastAPI) -> list[tuple[object, ...]]:
    """Every column of every stored token."""
    columns = list(AccessToken.__table__.columns)
    async with app.state.database.transaction() as tx:
        return await tx.records(sa.select(*columns), {}, lambda *row: row)


# Making and listing tokens.


async def test_creating_a_token_returns_its_secret_once(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    created = await make_token(client, alice, "tasks:read", name="  CI job  ")

    assert FORM.match(created["token"])
    assert created["name"] == "CI job"
    assert created["scopes"] == ["tasks:read"]
    assert created["project_ids"] is None
    assert created["last4"] == created["token"][-4:]
    assert created["last_used_at"] is None
    listed = (await client.get(TOKENS, headers=alice.headers)).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert created["token"] not in str(listed)


async def test_a_token_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    created = await make_token(client, alice, "tasks:read")

    (row,) = await stored_tokens(app)
    stored = " ".join(map(str, row))
    assert created["token"] not in stored
    assert created["token"][4:-6] not in stored  # nor its random part
    assert created["last4"] in stored


async def test_the_default_lifetime_is_30_days_and_at_most_366(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    default = await make_token(client, alice, "tasks:read")
    longest = await make_token(client, alice, "tasks:read", expires_in_days=366)

    for token, days in ((default, 30), (longest, 366)):
        created = utcnow().fromisoformat(token["created_at"])
        expires = utcnow().fromisoformat(token["expires_at"])
        assert expires - created == timedelta(days=days)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["tasks:admin"]},
        {"name": "x", "scopes": "tasks:read"},
        {"name": "", "scopes": ["tasks:read"]},
        {"name": "x" * 101, "scopes": ["tasks:read"]},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": 367},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": "30"},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": True},
        {"name": "x", "scopes": ["tasks:read"], "project_ids": []},
        {"name": "x", "scopes": ["tasks:read"], "project_ids": ["not-a-uuid"]},
        {"name": "x", "scopes": ["tasks:read"], "token": "thp_chosen"},
        {"scopes": ["tasks:read"]},
    ],
)
async def test_a_malformed_token_request_is_422_and_makes_nothing(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI, body: dict[str, object]
) -> None:
    assert_problem(await client.post(TOKENS, json=body, headers=alice.headers), 422)
    assert await stored_tokens(app) == []


async def test_project_ids_must_be_projects_the_user_is_a_member_of(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, app: FastAPI
) -> None:
    mine = await make_project(client, alice)
    theirs = await make_project(client, bob)
    for project_ids in ([theirs["id"]], [mine["id"], str(uuid.uuid4())]):
        response = await client.post(
            TOKENS,
            json={"name": "x", "scopes": ["tasks:read"], "project_ids": project_ids},
            headers=alice.headers,
        )
        assert_problem(response, 422)
    too_many = [mine["id"]] * 51
    response = await client.post(
        TOKENS,
        json={"name": "x", "scopes": ["tasks:read"], "project_ids": too_many},
        headers=alice.headers,
    )
    assert_problem(response, 422)
    assert await stored_tokens(app) == []


async def test_past_max_tokens_per_user_a_create_is_409(database_url: str) -> None:
    application = create_app(make_settings(database_url, MAX_TOKENS_PER_USER=2))
    try:
        async with client_of(application) as client:
            user = await make_user(client, "capped")
            for _ in range(2):
                await make_token(client, user, "tasks:read")
            response = await client.post(
                TOKENS, json={"name": "x", "scopes": ["tasks:read"]}, headers=user.headers
            )
            assert "MAX_TOKENS_PER_USER" in assert_problem(response, 409)["detail"]
            assert len((await client.get(TOKENS, headers=user.headers)).json()["items"]) == 2
    finally:
        await application.state.database.dispose()


async def test_concurrent_creates_never_pass_max_tokens_per_user(database_url: str) -> None:
    application = create_app(make_settings(database_url, MAX_TOKENS_PER_USER=5))
    try:
        async with client_of(application) as client:
            user = await make_user(client, "racer")
            body = {"name": "x", "scopes": ["tasks:read"]}
            responses = await asyncio.gather(
                *(client.post(TOKENS, json=body, headers=user.headers) for _ in range(20))
            )
            statuses = sorted(response.status_code for response in responses)
            assert statuses == [201] * 5 + [409] * 15
    finally:
        await application.state.database.dispose()


async def test_tokens_are_listed_newest_first_without_secrets(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    first = await make_token(client, alice, "tasks:read", name="first")
    second = await make_token(client, alice, "projects:read", name="second")
    await make_token(client, bob, "tasks:read", name="bob's")

    listed = (await client.get(TOKENS, headers=alice.headers)).json()["items"]

    assert [item["id"] for item in listed] == [second["id"], first["id"]]
    assert all(set(item) == set(first) - {"token"} for item in listed)


# Using a token.


async def test_a_token_reaches_the_routes_its_scopes_allow(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="mine")
    token = (await make_token(client, alice, "tasks:read"))["token"]

    listed = await client.get(f"{API}/tasks", headers=bearer(token))
    read = await client.get(f"{API}/tasks/{task['id']}", headers=bearer(token))

    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [task["id"]]
    assert read.status_code == 200
    assert "etag" in read.headers


async def test_a_token_without_the_scope_gets_403_insufficient_scope_naming_it(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    token = (await make_token(client, alice, "tasks:read"))["token"]

    response = await client.post(f"{API}/tasks", json={"title": "no"}, headers=bearer(token))

    body = assert_problem(response, 403)
    assert "tasks:write" in body["detail"]
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="tasks:write"'
    )
    async with app.state.database.transaction() as tx:
        assert await tx.scalar(sa.select(sa.func.count()).select_from(Task), {}) == 0


async def test_a_write_scope_includes_the_read_of_the_same_resource(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    token = (await make_token(client, alice, "tasks:write", "projects:write"))["token"]

    for path in (f"{API}/tasks", f"{API}/projects", f"{API}/projects/roles"):
        assert (await client.get(path, headers=bearer(token))).status_code == 200, path
    notifications = await client.get(f"{API}/notifications", headers=bearer(token))
    assert_problem(notifications, 403)


async def test_users_me_works_with_any_valid_token(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    token = (await make_token(client, alice, "notifications:read"))["token"]

    response = await client.get(f"{API}/users/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


SOME_ID = "5eccc4eb-3f78-46a0-8e34-3d76ecaf3789"
SESSION_ONLY = [
    ("POST", TOKENS, {"name": "x", "scopes": ["tasks:read"]}),
    ("GET", TOKENS, None),
    ("DELETE", f"{TOKENS}/{SOME_ID}", None),
    ("POST", f"{API}/auth/logout", None),
    ("GET", f"{API}/users/me/sessions", None),
    ("DELETE", f"{API}/users/me/sessions/{SOME_ID}", None),
    ("POST", f"{API}/users/me/password", {"current_password": "a", "new_password": "b"}),
    ("DELETE", f"{API}/users/me", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ONLY)
async def test_a_token_cannot_reach_session_only_routes(
    client: httpx.AsyncClient,
    alice: ApiUser,
    app: FastAPI,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    """A token cannot make, list or revoke tokens, nor touch the account or its sessions,
    whatever its scopes."""
    every_scope = [
        "tasks:write", "comments:write", "projects:write", "notifications:write",
        "webhooks:write", "changes:read",
    ]  # fmt: skip
    token = (await make_token(client, alice, *every_scope))["token"]

    response = await client.request(method, path, json=body, headers=bearer(token))

    assert_problem(response, 403)
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="session"'
    )
    assert len(await stored_tokens(app)) == 1
    assert (await client.get(f"{API}/users/me", headers=alice.headers)).status_code == 200


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="checksum"),
        pytest.param(lambda token: "THP_" + token[4:], id="prefix-case"),
        pytest.param(lambda token: token[:-2], id="too-short"),
        pytest.param(lambda token: token + "0", id="too-long"),
        pytest.param(lambda token: "thp_" + "0" * 38, id="made-up"),
        pytest.param(
            lambda token: "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",  # pragma: allowlist secret
            id="a-jwt",
        ),
    ],
)
async def test_a_malformed_token_is_401_without_touching_the_database(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI, credential: object
) -> None:
    token = (await make_token(client, alice, "tasks:read"))["token"]
    sent = credential(token)  # type: ignore[operator]

    with statements(app) as queries:
        response = await client.get(f"{API}/tasks", headers=bearer(sent))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert queries == []


async def test_a_non_ascii_token_is_401_without_touching_the_database(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    header = ("Bearer thp_" + "é" * 38).encode("latin-1")
    with statements(app) as queries:
        response = await client.get(f"{API}/tasks", headers=[(b"Authorization", header)])
    assert_problem(response, 401)
    assert queries == []


async def test_an_unknown_well_formed_token_is_401_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/tasks", headers=bearer(new_token()))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_new_token_has_the_form_and_a_crc32_checksum() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(FORM.match(token) and well_formed(token) for token in tokens)
    token = next(iter(tokens))
    assert not well_formed(token[:10] + ("a" if token[10] != "a" else "b") + token[11:])


async def test_a_token_request_writes_nothing_and_makes_the_round_trips_of_a_session(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    token = (await make_token(client, alice, "tasks:read"))["token"]
    await client.get(f"{API}/users/me", headers=bearer(token))  # its first use is recorded
    await app.state.token_use.settled()

    with statements(app) as queries:
        assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 200
        await app.state.token_use.settled()
    with statements(app) as listing:
        assert (await client.get(f"{API}/tasks", headers=bearer(token))).status_code == 200
        await app.state.token_use.settled()

    # As many as with a session: the authentication, then the route's own query.
    assert queries == ["SELECT"]
    assert listing == ["SELECT", "SELECT"]


async def test_last_used_at_is_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    created = await make_token(client, alice, "tasks:read")
    now = [utcnow()]
    shared = app.state.token_use
    app.state.token_use = TokenUse(app.state.database, clock=lambda: now[0])
    try:
        with statements(app) as queries:
            for _ in range(3):
                await client.get(f"{API}/users/me", headers=bearer(created["token"]))
            await app.state.token_use.settled()
        assert queries.count("UPDATE") == 1
        (listed,) = (await client.get(TOKENS, headers=alice.headers)).json()["items"]
        assert listed["last_used_at"] is not None

        now[0] += timedelta(seconds=61)
        with statements(app) as queries:
            await client.get(f"{API}/users/me", headers=bearer(created["token"]))
            await app.state.token_use.settled()
        assert queries.count("UPDATE") == 1
        (listed,) = (await client.get(TOKENS, headers=alice.headers)).json()["items"]
        assert listed["last_used_at"] == now[0].isoformat().replace("+00:00", "Z")
    finally:
        app.state.token_use = shared


# Ending a token.


async def test_deleting_a_token_ends_it_at_once(client: httpx.AsyncClient, alice: ApiUser) -> None:
    created = await make_token(client, alice, "tasks:read")

    gone = await client.delete(f"{TOKENS}/{created['id']}", headers=alice.headers)

    assert gone.status_code == 204
    response = await client.get(f"{API}/tasks", headers=bearer(created["token"]))
    assert_problem(response, 401)
    assert (await client.get(TOKENS, headers=alice.headers)).json()["items"] == []


async def test_deleting_another_users_token_is_404(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    created = await make_token(client, alice, "tasks:read")

    assert_problem(await client.delete(f"{TOKENS}/{created['id']}", headers=bob.headers), 404)
    response = await client.get(f"{API}/tasks", headers=bearer(created["token"]))
    assert response.status_code == 200


async def test_an_expired_token_is_401(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    created = await make_token(client, alice, "tasks:read")
    async with app.state.database.transaction() as tx:
        await tx.execute(sa.update(AccessToken).values(expires_at=utcnow()), {})

    response = await client.get(f"{API}/tasks", headers=bearer(created["token"]))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_deleting_the_account_ends_its_tokens(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    created = await make_token(client, alice, "tasks:read")

    assert (await client.delete(f"{API}/users/me", headers=alice.headers)).status_code == 204

    assert_problem(await client.get(f"{API}/users/me", headers=bearer(created["token"])), 401)


async def test_a_password_change_does_not_end_tokens(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    created = await make_token(client, alice, "tasks:read")
    change = {
        "current_password": alice.password,
        "new_password": "quince-ladder-river-77",  # pragma: allowlist secret
    }

    response = await client.post(f"{API}/users/me/password", json=change, headers=alice.headers)

    assert response.status_code == 204
    assert (await client.get(f"{API}/tasks", headers=bearer(created["token"]))).status_code == 200


async def test_revoking_found_tokens_is_202_whatever_the_strings(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    leaked = await make_token(client, alice, "tasks:read", name="deploy bot")
    kept = await make_token(client, bob, "tasks:read")
    strings = [leaked["token"], new_token(), "not a token", "x" * 5000, "", "thp_é"]

    response = await client.post(f"{TOKENS}/revoke", json={"tokens": strings})

    assert response.status_code == 202
    assert_problem(await client.get(f"{API}/tasks", headers=bearer(leaked["token"])), 401)
    assert (await client.get(f"{API}/tasks", headers=bearer(kept["token"]))).status_code == 200
    (notice,) = (await client.get(f"{API}/notifications", headers=alice.headers)).json()["items"]
    assert notice["kind"] == "token_revoked"
    assert notice["task_id"] is None
    assert "deploy bot" in notice["message"]
    assert (await client.get(f"{API}/notifications", headers=bob.headers)).json()["items"] == []
    again = await client.post(f"{TOKENS}/revoke", json={"tokens": [leaked["token"]]})
    assert again.status_code == 202


@pytest.mark.parametrize("body", [{}, {"tokens": []}, {"tokens": ["a"] * 101}, {"tokens": "a"}])
async def test_a_malformed_revocation_is_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    assert_problem(await client.post(f"{TOKENS}/revoke", json=body), 422)


async def test_revoking_found_tokens_is_rate_limited_per_address(database_url: str) -> None:
    application = create_app(make_settings(database_url, RATE_LIMIT_REGISTER="2/hour"))
    try:
        async with client_of(application) as client:
            body = {"tokens": [new_token()]}
            statuses = [
                (await client.post(f"{TOKENS}/revoke", json=body)).status_code for _ in range(3)
            ]
            refused = await client.post(f"{TOKENS}/revoke", json=body)
        assert statuses == [202, 202, 429]
        assert "retry-after" in refused.headers
    finally:
        await application.state.database.dispose()


# What a token may do: its scopes, intersected with its user's role now, within its projects.


async def test_an_editors_token_stops_writing_when_the_editor_becomes_a_viewer(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project = await make_project(client, alice)
    await add_member(client, alice, project["id"], "bob", "editor")
    token = (await make_token(client, bob, "tasks:write"))["token"]
    body = {"title": "by token", "project_id": project["id"]}
    assert (await client.post(f"{API}/tasks", json=body, headers=bearer(token))).status_code == 201

    await add_member(client, alice, project["id"], "bob", "viewer")

    refused = await client.post(f"{API}/tasks", json=body, headers=bearer(token))
    assert "editor" in assert_problem(refused, 403)["detail"]
    assert (await client.get(f"{API}/tasks", headers=bearer(token))).status_code == 200


async def test_a_restricted_token_lists_only_its_projects_tasks(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    chosen = await make_project(client, alice, name="chosen")
    other = await make_project(client, alice, name="other")
    in_chosen = await create_task(client, alice, title="in chosen", project_id=chosen["id"])
    in_other = await create_task(client, alice, title="in other", project_id=other["id"])
    personal = await create_task(client, alice, title="personal")
    token = (
        await make_token(client, alice, "tasks:read", "projects:read", project_ids=[chosen["id"]])
    )["token"]

    listed = (await client.get(f"{API}/tasks", headers=bearer(token))).json()["items"]
    projects = (await client.get(f"{API}/projects", headers=bearer(token))).json()["items"]

    assert [task["id"] for task in listed] == [in_chosen["id"]]
    assert [project["id"] for project in projects] == [chosen["id"]]
    for hidden in (in_other, personal):
        response = await client.get(f"{API}/tasks/{hidden['id']}", headers=bearer(token))
        assert_problem(response, 404)
    assert_problem(await client.get(f"{API}/projects/{other['id']}", headers=bearer(token)), 404)
    by_filter = await client.get(
        f"{API}/tasks", params={"project_id": other["id"]}, headers=bearer(token)
    )
    assert_problem(by_filter, 404)
    session_view = (await client.get(f"{API}/tasks", headers=alice.headers)).json()["items"]
    assert len(session_view) == 3


async def test_a_restricted_token_never_sees_personal_tasks(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    chosen = await make_project(client, alice)
    personal = await create_task(client, alice, title="personal")
    token = (
        await make_token(client, alice, "tasks:write", "comments:write", project_ids=[chosen["id"]])
    )["token"]
    task_url = f"{API}/tasks/{personal['id']}"

    for method, path, body in [
        ("GET", task_url, None),
        ("PATCH", task_url, {"title": "changed"}),
        ("DELETE", task_url, None),
        ("GET", f"{task_url}/comments", None),
        ("POST", f"{task_url}/comments", {"body": "hi"}),
    ]:
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert_problem(response, 404)
    listed = await client.get(f"{API}/tasks", params={"view": "personal"}, headers=bearer(token))
    assert listed.status_code in (200, 422)
    if listed.status_code == 200:
        assert listed.json()["items"] == []
    unchanged = await client.get(task_url, headers=alice.headers)
    assert unchanged.json()["title"] == "personal"


async def test_a_restricted_token_cannot_create_outside_its_projects(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    chosen = await make_project(client, alice)
    token = (
        await make_token(client, alice, "tasks:write", "projects:write", project_ids=[chosen["id"]])
    )["token"]

    personal = await client.post(f"{API}/tasks", json={"title": "x"}, headers=bearer(token))
    project = await client.post(f"{API}/projects", json={"name": "x"}, headers=bearer(token))
    inside = await client.post(
        f"{API}/tasks", json={"title": "x", "project_id": chosen["id"]}, headers=bearer(token)
    )

    assert_problem(personal, 403)
    assert_problem(project, 403)
    assert inside.status_code == 201
    projects = (await client.get(f"{API}/projects", headers=alice.headers)).json()["items"]
    assert len(projects) == 1


async def test_a_restricted_token_loses_a_project_when_its_user_leaves_it(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project = await make_project(client, alice)
    await add_member(client, alice, project["id"], "bob", "editor")
    task = await create_task(client, alice, title="shared", project_id=project["id"])
    token = (await make_token(client, bob, "tasks:read", project_ids=[project["id"]]))["token"]
    assert (await client.get(f"{API}/tasks/{task['id']}", headers=bearer(token))).status_code == 200

    removed = await client.delete(
        f"{API}/projects/{project['id']}/members/bob", headers=alice.headers
    )

    assert removed.status_code == 204
    assert_problem(await client.get(f"{API}/tasks/{task['id']}", headers=bearer(token)), 404)


async def test_rate_limits_count_a_users_token_and_session_requests_together(
    database_url: str,
) -> None:
    application = create_app(make_settings(database_url, RATE_LIMIT_API="4/minute"))
    try:
        async with client_of(application) as client:
            user = await make_user(client, "limited")
            token = (await make_token(client, user, "tasks:read"))["token"]  # 1
            for headers in (user.headers, bearer(token), user.headers):  # 2, 3, 4
                assert (await client.get(f"{API}/tasks", headers=headers)).status_code == 200
            refused = await client.get(f"{API}/tasks", headers=bearer(token))
        assert_problem(refused, 429)
    finally:
        await application.state.database.dispose()


async def test_idempotency_keys_and_etags_work_with_a_token(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    token = (await make_token(client, alice, "tasks:write"))["token"]
    headers = {**bearer(token), "Idempotency-Key": "once"}

    first = await client.post(f"{API}/tasks", json={"title": "once"}, headers=headers)
    again = await client.post(f"{API}/tasks", json={"title": "once"}, headers=headers)
    stale = await client.patch(
        f"{API}/tasks/{first.json()['id']}",
        json={"title": "late"},
        headers={**bearer(token), "If-Match": '"not-the-version"'},
    )

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert_problem(stale, 412)


async def test_which_answer_wins_for_a_token(client: httpx.AsyncClient, alice: ApiUser) -> None:
    """401 (who is asking) -> 403 insufficient_scope (from the route alone, the same for every
    id) -> 400/422 (the request in itself) -> 404 (what the caller cannot see)."""
    reader = (await make_token(client, alice, "tasks:read"))["token"]
    writer = (await make_token(client, alice, "tasks:write"))["token"]
    malformed = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    unknown = f"{API}/tasks/{SOME_ID}"

    async def patch(token: str | None, **request: Any) -> int:
        headers = {**request.pop("headers", {}), **(bearer(token) if token else {})}
        response = await client.patch(unknown, headers=headers, **request)
        return response.status_code

    assert await patch(None, **malformed) == 401
    assert await patch(reader, **malformed) == 403
    assert await patch(reader, json={"title": 5}) == 403
    assert await patch(reader, json={"title": "ok"}) == 403
    assert await patch(writer, **malformed) == 400
    assert await patch(writer, json={"title": 5}) == 422
    assert await patch(writer, json={"title": "ok"}) == 404


async def test_a_restricted_token_lists_only_the_notifications_about_its_projects(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    chosen = await make_project(client, alice)
    in_project = await create_task(client, alice, title="in project", project_id=chosen["id"])
    personal = await create_task(client, alice, title="personal")
    for task in (in_project, personal):  # reminders, as the worker makes them
        await app.state.database.execute(
            sa.insert(Notification).values(
                id=uuid.uuid4(),
                user_id=uuid.UUID(alice.id),
                task_id=uuid.UUID(task["id"]),
                task_due_at=utcnow() + timedelta(hours=1),
                kind="task_due",
                message=f"{task['title']} is due soon",
                created_at=utcnow(),
            ),
            {},
        )
    restricted = await make_token(client, alice, "notifications:read", project_ids=[chosen["id"]])
    unrestricted = await make_token(client, alice, "notifications:read")

    seen = await client.get(f"{API}/notifications", headers=bearer(restricted["token"]))
    every = await client.get(f"{API}/notifications", headers=bearer(unrestricted["token"]))

    assert [item["task_id"] for item in seen.json()["items"]] == [in_project["id"]]
    assert len(every.json()["items"]) == 2
