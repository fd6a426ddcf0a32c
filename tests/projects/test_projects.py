"""Projects and sharing: create, read, change with If-Match, archive, members, leave, transfer,
quotas, the roles table, and exactly one owner whatever races."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.access.roles import LEAST_ROLE, Role, role_table
from taskhub.main import create_app
from taskhub.tables import Project
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem, make_user
from tests.projects.helpers import PROJECTS, add_member, make_project

ME = f"{API}/users/me"


class TestCreateAndRead:
    async def test_create_is_201_with_location_etag_and_the_caller_as_owner(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            PROJECTS, json={"name": "  Launch  ", "description": "Q1"}, headers=alice.headers
        )
        assert response.status_code == 201
        body = response.json()
        assert response.headers["Location"] == f"/api/v1/projects/{body['id']}"
        assert response.headers["ETag"].startswith('"')
        assert {k: body[k] for k in ("name", "description", "archived", "role")} == {
            "name": "Launch",
            "description": "Q1",
            "archived": False,
            "role": "owner",
        }

    @pytest.mark.parametrize(
        "body",
        [{}, {"name": ""}, {"name": "x" * 101}, {"name": "a\x00b"}, {"name": "n", "role": "owner"}],
    )
    async def test_bad_create_is_422_and_makes_nothing(
        self, client: httpx.AsyncClient, alice: ApiUser, body: dict[str, str]
    ) -> None:
        assert_problem(await client.post(PROJECTS, json=body, headers=alice.headers), 422)
        listed = await client.get(PROJECTS, headers=alice.headers)
        assert listed.json()["items"] == []

    async def test_list_shows_the_callers_projects_with_their_role_and_filters_archived(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        mine = await make_project(client, alice, name="Mine")
        shared = await make_project(client, bob, name="Shared")
        await make_project(client, bob, name="Bob's own")
        await add_member(client, bob, shared["id"], "alice", "editor")
        await client.patch(
            f"{PROJECTS}/{mine['id']}", json={"archived": True}, headers=alice.headers
        )

        listed = (await client.get(PROJECTS, headers=alice.headers)).json()["items"]
        assert [(p["name"], p["role"]) for p in listed] == [("Shared", "editor"), ("Mine", "owner")]
        active = await client.get(PROJECTS, params={"archived": "false"}, headers=alice.headers)
        assert [p["name"] for p in active.json()["items"]] == ["Shared"]

    async def test_walking_pages_yields_every_project_once(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        made = {(await make_project(client, alice, name=f"p{i}"))["id"] for i in range(7)}
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(PROJECTS, params=params, headers=alice.headers)).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(made)

    async def test_roles_table_is_the_one_the_checks_use(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.get(f"{PROJECTS}/roles", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"roles": role_table()}
        roles = [entry["role"] for entry in response.json()["roles"]]
        assert roles == ["owner", "admin", "editor", "commenter", "viewer"]
        assert response.json()["roles"][-1]["actions"] == ["see"]
        assert LEAST_ROLE  # the same table


class TestChangeWithIfMatch:
    async def test_a_stale_etag_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        url = f"{PROJECTS}/{project['id']}"
        first = await client.get(url, headers=alice.headers)
        tag = first.headers["ETag"]
        renamed = await client.patch(
            url, json={"name": "One"}, headers={**alice.headers, "If-Match": tag}
        )
        assert renamed.status_code == 200
        assert renamed.headers["ETag"] != tag

        stale = await client.patch(
            url, json={"name": "Two"}, headers={**alice.headers, "If-Match": tag}
        )
        assert_problem(stale, 412)
        gone = await client.delete(url, headers={**alice.headers, "If-Match": tag})
        assert_problem(gone, 412)
        assert (await client.get(url, headers=alice.headers)).json()["name"] == "One"

    async def test_without_if_match_the_last_write_wins(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        url = f"{PROJECTS}/{project['id']}"
        for name in ("A", "B"):
            assert (
                await client.patch(url, json={"name": name}, headers=alice.headers)
            ).status_code == 200
        assert (await client.get(url, headers=alice.headers)).json()["name"] == "B"


class TestArchived:
    async def test_an_archived_project_keeps_its_name_until_an_admin_unarchives_it(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        url = f"{PROJECTS}/{project['id']}"
        await client.patch(url, json={"archived": True}, headers=alice.headers)

        refused = await client.patch(url, json={"name": "New"}, headers=alice.headers)
        assert_problem(refused, 403)
        back = await client.patch(
            url, json={"archived": False, "name": "New"}, headers=alice.headers
        )
        assert back.status_code == 200
        assert back.json()["name"] == "New"
        assert back.json()["archived"] is False


class TestMembers:
    async def test_members_are_listed_owner_first_then_by_when_added(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        project = await make_project(client, bob)
        await make_user(client, "carol")
        await add_member(client, bob, project["id"], "carol", "viewer")
        await add_member(client, bob, project["id"], "alice", "editor")
        await add_member(
            client, bob, project["id"], "carol", "commenter"
        )  # a change keeps added_at

        members = await client.get(f"{PROJECTS}/{project['id']}/members", headers=alice.headers)
        assert [(m["username"], m["role"]) for m in members.json()["items"]] == [
            ("bob", "owner"),
            ("carol", "commenter"),
            ("alice", "editor"),
        ]

    async def test_owner_is_not_a_role_one_can_set_and_the_owners_role_cannot_change(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        members = f"{PROJECTS}/{project['id']}/members"
        owner_role = await client.put(
            f"{members}/bob", json={"role": "owner"}, headers=alice.headers
        )
        assert_problem(owner_role, 422)
        own = await client.put(f"{members}/alice", json={"role": "viewer"}, headers=alice.headers)
        assert_problem(own, 409)
        unknown = await client.put(
            f"{members}/nobody", json={"role": "viewer"}, headers=alice.headers
        )
        assert_problem(unknown, 404)

    async def test_members_may_leave_but_not_the_owner(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        await add_member(client, alice, project["id"], "bob", "viewer")
        members = f"{PROJECTS}/{project['id']}/members"

        assert (await client.delete(f"{members}/bob", headers=bob.headers)).status_code == 204
        assert_problem(await client.get(f"{PROJECTS}/{project['id']}", headers=bob.headers), 404)
        assert_problem(await client.delete(f"{members}/alice", headers=alice.headers), 409)

    async def test_transfer_makes_the_member_owner_and_the_old_owner_admin(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        project = await make_project(client, alice)
        await add_member(client, alice, project["id"], "bob", "viewer")
        url = f"{PROJECTS}/{project['id']}"

        moved = await client.post(
            f"{url}/transfer", json={"username": "bob"}, headers=alice.headers
        )
        assert moved.status_code == 200
        assert moved.json()["role"] == "admin"
        roles = {
            m["username"]: m["role"]
            for m in (await client.get(f"{url}/members", headers=bob.headers)).json()["items"]
        }
        assert roles == {"bob": "owner", "alice": "admin"}
        outsider = await client.post(
            f"{url}/transfer", json={"username": "nobody"}, headers=bob.headers
        )
        assert_problem(outsider, 404)


class TestQuotas:
    async def test_past_the_project_quota_409_names_the_limit_and_nothing_is_made(
        self, app: FastAPI, database_url: str
    ) -> None:
        application = create_app(
            make_settings(database_url, MAX_PROJECTS_PER_USER=2, MAX_MEMBERS_PER_PROJECT=2)
        )
        async with AsyncExitStack() as stack:
            stack.push_async_callback(application.state.database.dispose)
            http = await stack.enter_async_context(client_of(application))
            owner = await make_user(http, "quota")
            await make_user(http, "first")
            await make_user(http, "second")
            project = await make_project(http, owner)
            await make_project(http, owner)
            refused = assert_problem(
                await http.post(PROJECTS, json={"name": "3"}, headers=owner.headers), 409
            )
            assert "MAX_PROJECTS_PER_USER" in refused["detail"]
            assert len((await http.get(PROJECTS, headers=owner.headers)).json()["items"]) == 2

            await add_member(http, owner, project["id"], "first", "viewer")
            full = await http.put(
                f"{PROJECTS}/{project['id']}/members/second",
                json={"role": "viewer"},
                headers=owner.headers,
            )
            assert "MAX_MEMBERS_PER_PROJECT" in assert_problem(full, 409)["detail"]


async def test_racing_transfers_and_role_changes_leave_exactly_one_owner(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    project = await make_project(client, alice)
    carol = await make_user(client, "carol")
    for name in ("bob", "carol"):
        await add_member(client, alice, project["id"], name, "admin")
    url = f"{PROJECTS}/{project['id']}"

    attempts = [
        client.post(f"{url}/transfer", json={"username": "bob"}, headers=alice.headers),
        client.post(f"{url}/transfer", json={"username": "carol"}, headers=alice.headers),
        client.put(f"{url}/members/bob", json={"role": "viewer"}, headers=alice.headers),
        client.delete(f"{url}/members/carol", headers=bob.headers),
        client.put(f"{url}/members/alice", json={"role": "editor"}, headers=carol.headers),
    ] * 3
    responses = await asyncio.gather(*attempts)

    assert all(r.status_code < 500 for r in responses)
    members = (await client.get(url, headers=alice.headers)).status_code
    for user in (alice, bob, carol):
        listed = await client.get(f"{url}/members", headers=user.headers)
        if listed.status_code == 200:
            roles = Counter(m["role"] for m in listed.json()["items"])
            assert roles[Role.OWNER.value] == 1
            break
    assert members in (200, 404)


class TestAccountDeletion:
    async def test_an_owner_of_a_shared_project_gets_409_naming_it_until_ownership_moves(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        shared = await make_project(client, alice, name="Shared one")
        await add_member(client, alice, shared["id"], "bob", "editor")

        refused = assert_problem(await client.delete(ME, headers=alice.headers), 409)
        assert "Shared one" in refused["detail"]
        assert (await client.get(ME, headers=alice.headers)).status_code == 200

        moved = await client.post(
            f"{PROJECTS}/{shared['id']}/transfer", json={"username": "bob"}, headers=alice.headers
        )
        assert moved.status_code == 200
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204
        members = await client.get(f"{PROJECTS}/{shared['id']}/members", headers=bob.headers)
        assert [m["username"] for m in members.json()["items"]] == ["bob"]

    async def test_projects_the_user_is_alone_in_go_with_the_account(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await make_project(client, alice, name="Solo")
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204
        remaining = await app.state.database.scalar(
            sa.select(sa.func.count()).select_from(Project), {}
        )
        assert remaining == 0
