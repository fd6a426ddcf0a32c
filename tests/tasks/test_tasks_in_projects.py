"""Tasks in projects: creation by role, assignees, labels, moves, the listing across projects and
its new filters, ETag/If-Match, archived projects and the task quotas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import ApiUser, assert_problem, make_user
from tests.projects.helpers import PROJECTS, add_member, make_project
from tests.tasks.helpers import TASKS, task_url


async def create(client: httpx.AsyncClient, user: ApiUser, **fields: Any) -> dict[str, Any]:
    response = await client.post(TASKS, json={"title": "Task", **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def listing(client: httpx.AsyncClient, user: ApiUser, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /tasks for `user`."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await client.get(TASKS, params=query, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def titles(items: list[dict[str, Any]]) -> set[str]:
    return {item["title"] for item in items}


@pytest.fixture
async def project(client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser) -> dict[str, Any]:
    """Alice's project, with Bob as an editor."""
    created = await make_project(client, alice)
    await add_member(client, alice, created["id"], bob.username, "editor")
    return created


class TestCreateInAProject:
    async def test_editor_creates_a_project_task_with_creator_and_no_owner(
        self, client: httpx.AsyncClient, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, bob, project_id=project["id"], labels=["Urgent"])
        assert task["project_id"] == project["id"]
        assert task["creator_id"] == bob.id
        assert task["assignee_id"] is None
        assert task["labels"] == ["Urgent"]
        assert "owner_id" not in task

    async def test_viewer_creating_gets_403_naming_editor_and_nothing_is_made(
        self, client: httpx.AsyncClient, alice: ApiUser, project: dict[str, Any]
    ) -> None:
        viewer = await make_user(client, "viewer")
        await add_member(client, alice, project["id"], "viewer", "viewer")
        response = await client.post(
            TASKS, json={"title": "No", "project_id": project["id"]}, headers=viewer.headers
        )
        assert "editor" in assert_problem(response, 403)["detail"]
        assert await listing(client, alice) == []

    async def test_non_member_creating_in_a_project_gets_404(
        self, client: httpx.AsyncClient, project: dict[str, Any]
    ) -> None:
        outsider = await make_user(client, "outsider")
        response = await client.post(
            TASKS, json={"title": "No", "project_id": project["id"]}, headers=outsider.headers
        )
        assert assert_problem(response, 404)["detail"] == "Project not found"

    async def test_server_controlled_creator_id_is_422(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.post(
            TASKS, json={"title": "x", "creator_id": alice.id}, headers=alice.headers
        )
        assert_problem(response, 422)


class TestAssignees:
    async def test_a_member_can_be_assigned_and_an_outsider_is_422(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        outsider = await make_user(client, "outsider")
        task = await create(client, alice, project_id=project["id"], assignee_id=bob.id)
        assert task["assignee_id"] == bob.id
        refused = await client.post(
            TASKS,
            json={"title": "x", "project_id": project["id"], "assignee_id": outsider.id},
            headers=alice.headers,
        )
        assert assert_problem(refused, 422)["errors"][0]["loc"] == ["body", "assignee_id"]
        patched = await client.patch(
            task_url(task["id"]), json={"assignee_id": outsider.id}, headers=alice.headers
        )
        assert_problem(patched, 422)
        after = await client.get(task_url(task["id"]), headers=alice.headers)
        assert after.json()["assignee_id"] == bob.id

    async def test_a_personal_task_is_assigned_only_to_its_creator(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        mine = await create(client, alice, assignee_id=alice.id)
        assert mine["assignee_id"] == alice.id
        assert_problem(
            await client.post(
                TASKS, json={"title": "x", "assignee_id": bob.id}, headers=alice.headers
            ),
            422,
        )
        cleared = await client.patch(
            task_url(mine["id"]), json={"assignee_id": None}, headers=alice.headers
        )
        assert cleared.json()["assignee_id"] is None


class TestLabels:
    async def test_labels_are_distinct_ignoring_case_first_spelling_kept_order_kept(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        task = await create(client, alice, labels=[" Urgent ", "home", "urgent", "Ärger", "ärger"])
        assert task["labels"] == ["Urgent", "home", "Ärger"]

    @pytest.mark.parametrize(
        "labels",
        [[""], ["   "], ["x" * 51], [f"l{i}" for i in range(21)], ["a\x00"], "urgent", [1]],
    )
    async def test_bad_labels_are_422_and_nothing_is_made(
        self, client: httpx.AsyncClient, alice: ApiUser, labels: Any
    ) -> None:
        response = await client.post(
            TASKS, json={"title": "x", "labels": labels}, headers=alice.headers
        )
        assert_problem(response, 422)
        assert await listing(client, alice) == []

    async def test_twenty_distinct_labels_with_repeats_are_accepted(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        labels = [f"l{i}" for i in range(20)] + [f"L{i}" for i in range(20)]
        task = await create(client, alice, labels=labels)
        assert task["labels"] == labels[:20]

    async def test_empty_list_clears_labels_and_null_is_422(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        task = await create(client, alice, labels=["a"])
        url = task_url(task["id"])
        assert_problem(await client.patch(url, json={"labels": None}, headers=alice.headers), 422)
        cleared = await client.patch(url, json={"labels": []}, headers=alice.headers)
        assert cleared.json()["labels"] == []

    async def test_label_filter_ignores_case_in_any_script_and_repeats_mean_all(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await create(client, alice, title="both", labels=["Ärger", "Home"])
        await create(client, alice, title="one", labels=["ärger"])
        await create(client, alice, title="none")
        assert titles(await listing(client, alice, label="ÄRGER")) == {"both", "one"}
        assert titles(await listing(client, alice, label=["ärger", "home"])) == {"both"}
        assert await listing(client, alice, label="missing") == []


class TestListingAcrossProjects:
    async def test_listing_holds_personal_and_every_project_task_and_filters_by_scope(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        other = await make_project(client, bob, name="Bob's")
        await create(client, alice, title="alice personal")
        await create(client, bob, title="bob personal")
        await create(client, bob, title="in shared", project_id=project["id"])
        await create(client, bob, title="in bob's", project_id=other["id"])
        assert titles(await listing(client, alice)) == {"alice personal", "in shared"}
        assert titles(await listing(client, bob)) == {"bob personal", "in shared", "in bob's"}
        assert titles(await listing(client, bob, project_id="none")) == {"bob personal"}
        assert titles(await listing(client, bob, project_id=project["id"])) == {"in shared"}
        both = await listing(client, bob, project_id=["none", other["id"]])
        assert titles(both) == {"bob personal", "in bob's"}

    async def test_a_project_filter_the_caller_cannot_see_is_404(
        self, client: httpx.AsyncClient, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        outsider = await make_user(client, "outsider")
        response = await client.get(
            TASKS, params={"project_id": project["id"]}, headers=outsider.headers
        )
        assert_problem(response, 404)
        assert_problem(
            await client.get(TASKS, params={"project_id": "nope"}, headers=bob.headers), 422
        )

    async def test_assignee_filter_takes_me_none_and_an_id(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        pid = project["id"]
        await create(client, alice, title="to bob", project_id=pid, assignee_id=bob.id)
        await create(client, alice, title="to alice", project_id=pid, assignee_id=alice.id)
        await create(client, alice, title="nobody", project_id=pid)
        assert titles(await listing(client, bob, assignee_id="me")) == {"to bob"}
        assert titles(await listing(client, bob, assignee_id="none")) == {"nobody"}
        assert titles(await listing(client, bob, assignee_id=alice.id)) == {"to alice"}

    @pytest.mark.parametrize("sort", ["-created_at", "due_at", "-priority", "updated_at"])
    async def test_walking_every_page_across_projects_yields_each_task_once_while_tasks_are_added(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, sort: str
    ) -> None:
        projects = [await make_project(client, alice, name=f"p{i}") for i in range(3)]
        for p in projects:
            await add_member(client, alice, p["id"], bob.username, "editor")
        expected: set[str] = set()
        for i in range(24):
            scope = projects[i % 4]["id"] if i % 4 < 3 else None
            due = f"2026-12-{1 + i % 5:02d}T10:00:00Z" if i % 3 else None
            task = await create(
                client, alice, title=f"t{i}", project_id=scope, due_at=due,
                priority=("low", "medium", "high")[i % 3],
            )  # fmt: skip
            if scope is not None:
                expected.add(task["id"])
        seen: list[str] = []
        cursor = None
        added = 0
        while True:
            query = {"sort": sort, "limit": 5, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(TASKS, params=query, headers=bob.headers)).json()
            seen += [item["id"] for item in page["items"]]
            # Meanwhile, more tasks arrive in every project.
            for p in projects:
                await create(client, alice, title=f"late{added}", project_id=p["id"])
                added += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "a task was listed twice"
        assert expected <= set(seen), "a task that existed before the walk was missed"


class TestEtags:
    async def test_get_post_and_patch_send_an_etag_that_changes_with_every_change(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        created = await client.post(TASKS, json={"title": "x"}, headers=alice.headers)
        url = task_url(created.json()["id"])
        first = created.headers["ETag"]
        assert (await client.get(url, headers=alice.headers)).headers["ETag"] == first
        patched = await client.patch(url, json={"title": "y"}, headers=alice.headers)
        assert patched.headers["ETag"] != first
        assert (await client.get(url, headers=alice.headers)).headers["ETag"] == patched.headers[
            "ETag"
        ]

    async def test_patch_and_delete_with_a_stale_if_match_are_412_and_change_nothing(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        created = await client.post(TASKS, json={"title": "x"}, headers=alice.headers)
        url = task_url(created.json()["id"])
        stale = created.headers["ETag"]
        current = (await client.patch(url, json={"title": "y"}, headers=alice.headers)).headers[
            "ETag"
        ]
        refused = await client.patch(
            url, json={"title": "z"}, headers={**alice.headers, "If-Match": stale}
        )
        assert_problem(refused, 412)
        assert_problem(await client.delete(url, headers={**alice.headers, "If-Match": stale}), 412)
        assert_problem(
            await client.patch(url, json={}, headers={**alice.headers, "If-Match": stale}), 412
        )
        assert_problem(
            await client.delete(url, headers={**alice.headers, "If-Match": '"x", W/"1"'}), 412
        )
        assert (await client.get(url, headers=alice.headers)).json()["title"] == "y"
        both = {**alice.headers, "If-Match": f"{stale}, {current}"}
        accepted = await client.patch(url, json={"title": "z"}, headers=both)
        assert accepted.status_code == 200
        gone = await client.delete(url, headers={**alice.headers, "If-Match": "*"})
        assert gone.status_code == 204

    async def test_if_match_on_someone_elses_task_is_404_not_412(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        created = await client.post(TASKS, json={"title": "x"}, headers=alice.headers)
        url = task_url(created.json()["id"])
        response = await client.delete(url, headers={**bob.headers, "If-Match": '"999"'})
        assert_problem(response, 404)


class TestMoves:
    async def test_moving_needs_write_rights_on_both_sides(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        elsewhere = await make_project(client, alice, name="Elsewhere")
        await add_member(client, alice, elsewhere["id"], bob.username, "viewer")
        task = await create(client, bob, project_id=project["id"])
        url = task_url(task["id"])
        refused = await client.patch(
            url, json={"project_id": elsewhere["id"], "title": "moved"}, headers=bob.headers
        )
        assert "editor" in assert_problem(refused, 403)["detail"]
        assert (await client.get(url, headers=bob.headers)).json()["project_id"] == project["id"]
        await add_member(client, alice, elsewhere["id"], bob.username, "editor")
        moved = await client.patch(url, json={"project_id": elsewhere["id"]}, headers=bob.headers)
        assert moved.json()["project_id"] == elsewhere["id"]

    async def test_moving_to_an_invisible_project_is_404(
        self, client: httpx.AsyncClient, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        outsider = await make_user(client, "outsider")
        theirs = await make_project(client, outsider, name="Theirs")
        task = await create(client, bob, project_id=project["id"])
        refused = await client.patch(
            task_url(task["id"]), json={"project_id": theirs["id"]}, headers=bob.headers
        )
        assert assert_problem(refused, 404)["detail"] == "Project not found"

    async def test_moving_out_makes_it_the_movers_personal_task(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, alice, project_id=project["id"], assignee_id=alice.id)
        moved = await client.patch(
            task_url(task["id"]), json={"project_id": None}, headers=bob.headers
        )
        body = moved.json()
        assert (body["project_id"], body["creator_id"], body["assignee_id"]) == (None, bob.id, None)
        assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)
        assert titles(await listing(client, bob, project_id="none")) == {"Task"}

    async def test_an_assignee_who_is_not_a_member_of_the_target_is_cleared(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        target = await make_project(client, bob, name="Bob's")
        task = await create(client, bob, project_id=project["id"], assignee_id=alice.id)
        moved = await client.patch(
            task_url(task["id"]), json={"project_id": target["id"]}, headers=bob.headers
        )
        assert moved.json()["assignee_id"] is None

    async def test_a_personal_task_moves_into_a_project(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, bob, assignee_id=bob.id)
        moved = await client.patch(
            task_url(task["id"]), json={"project_id": project["id"]}, headers=bob.headers
        )
        assert moved.json()["project_id"] == project["id"]
        assert moved.json()["assignee_id"] == bob.id
        assert (await client.get(task_url(task["id"]), headers=alice.headers)).status_code == 200


class TestArchivedProjects:
    async def test_an_archived_projects_tasks_are_read_only_but_listed(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, bob, project_id=project["id"])
        url = task_url(task["id"])
        archived = await client.patch(
            f"{PROJECTS}/{project['id']}", json={"archived": True}, headers=alice.headers
        )
        assert archived.status_code == 200
        for user in (alice, bob):
            assert_problem(await client.patch(url, json={"title": "x"}, headers=user.headers), 403)
            assert_problem(await client.delete(url, headers=user.headers), 403)
            assert_problem(
                await client.post(
                    TASKS, json={"title": "x", "project_id": project["id"]}, headers=user.headers
                ),
                403,
            )
        assert (await client.get(url, headers=bob.headers)).json()["title"] == "Task"
        assert [item["id"] for item in await listing(client, bob)] == [task["id"]]


@pytest.fixture
async def small_quotas(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(
        make_settings(database_url, MAX_TASKS_PER_USER=2, MAX_TASKS_PER_PROJECT=2)
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(application.state.database.dispose)
        yield await stack.enter_async_context(client_of(application))


class TestQuotas:
    async def test_past_a_task_quota_409_names_it_and_nothing_is_made(
        self, small_quotas: httpx.AsyncClient
    ) -> None:
        http = small_quotas
        owner = await make_user(http, "quota")
        await create(http, owner)
        spare = await create(http, owner)
        refused = assert_problem(
            await http.post(TASKS, json={"title": "3"}, headers=owner.headers), 409
        )
        assert "MAX_TASKS_PER_USER" in refused["detail"]
        project = await make_project(http, owner)
        for _ in range(2):
            await create(http, owner, project_id=project["id"])
        full = await http.post(
            TASKS, json={"title": "3", "project_id": project["id"]}, headers=owner.headers
        )
        assert "MAX_TASKS_PER_PROJECT" in assert_problem(full, 409)["detail"]
        moving = await http.patch(
            task_url(spare["id"]), json={"project_id": project["id"]}, headers=owner.headers
        )
        assert "MAX_TASKS_PER_PROJECT" in assert_problem(moving, 409)["detail"]
        assert len(await listing(http, owner)) == 4


class TestConcurrency:
    async def test_a_member_removed_cannot_write_after_the_removal(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, alice, project_id=project["id"])
        url = task_url(task["id"])
        removed = await client.delete(
            f"{PROJECTS}/{project['id']}/members/{bob.username}", headers=alice.headers
        )
        assert removed.status_code == 204
        assert_problem(await client.patch(url, json={"title": "late"}, headers=bob.headers), 404)
        assert_problem(await client.delete(url, headers=bob.headers), 404)
        assert (await client.get(url, headers=alice.headers)).json()["title"] == "Task"

    async def test_concurrent_patches_by_two_members_leave_one_whole_patch(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
    ) -> None:
        task = await create(client, alice, project_id=project["id"])
        url = task_url(task["id"])
        first = {"title": "alice's", "priority": "high", "labels": ["a"]}
        second = {"title": "bob's", "priority": "low", "labels": ["b"]}
        for _ in range(5):
            await asyncio.gather(
                client.patch(url, json=first, headers=alice.headers),
                client.patch(url, json=second, headers=bob.headers),
            )
            final = (await client.get(url, headers=alice.headers)).json()
            kept = {key: final[key] for key in first}
            assert kept in (first, second), f"a torn write: {kept}"


async def test_a_removal_committed_while_a_members_patch_waits_is_never_overtaken(
    client: httpx.AsyncClient,
    alice: ApiUser,
    bob: ApiUser,
    project: dict[str, Any],
    database_url: str,
    is_postgres: bool,
) -> None:
    """Bob's PATCH waits on the task's row lock; Alice removes him meanwhile. Either his write
    commits before the removal does (the removal waits for it), or it is refused: never a write
    that completes after the removal was committed. (SQLite runs one writer at a time.)"""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite serialises every write")
    task = await create(client, alice, project_id=project["id"])
    url = task_url(task["id"])
    order: list[str] = []

    async def patch() -> httpx.Response:
        response = await client.patch(url, json={"title": "bob's"}, headers=bob.headers)
        order.append("patch")
        return response

    async def remove() -> httpx.Response:
        response = await client.delete(
            f"{PROJECTS}/{project['id']}/members/{bob.username}", headers=alice.headers
        )
        order.append("removal")
        return response

    holder = await psycopg.AsyncConnection.connect(database_url)
    async with holder:
        async with holder.transaction():
            await holder.execute("SELECT id FROM task WHERE id = %s FOR UPDATE", [task["id"]])
            patching = asyncio.create_task(patch())
            await asyncio.sleep(0.3)  # Bob's UPDATE is now waiting on the row lock
            removing = asyncio.create_task(remove())
            await asyncio.sleep(0.3)
        patched, removed = await patching, await removing
    assert removed.status_code == 204
    title = (await client.get(url, headers=alice.headers)).json()["title"]
    if patched.status_code == 200:
        assert order == ["patch", "removal"], "the write completed after the removal"
        assert title == "bob's"
    else:
        assert_problem(patched, 404)
        assert title == "Task"


async def test_the_new_filters_combine_with_v1s(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, project: dict[str, Any]
) -> None:
    pid = project["id"]
    wanted = {"project_id": pid, "labels": ["Ops"], "status": "in_progress", "assignee_id": bob.id}
    await create(client, alice, title="deploy the api", priority="high", **wanted)
    await create(client, alice, title="deploy the docs", priority="low", **wanted)
    await create(client, alice, title="deploy personal", labels=["ops"], status="in_progress")
    await create(client, alice, title="deploy undone", project_id=pid, labels=["ops"])
    found = await listing(
        client,
        bob,
        project_id=pid,
        label="OPS",
        status="in_progress",
        assignee_id="me",
        priority="high",
        q="DEPLOY",
        sort="-priority",
    )
    assert titles(found) == {"deploy the api"}
    personal_too = await listing(client, alice, label="ops", status="in_progress", q="deploy")
    assert titles(personal_too) == {"deploy the api", "deploy the docs", "deploy personal"}


async def test_an_assignee_removed_while_a_task_is_assigned_to_them_is_never_left_assigned(
    client: httpx.AsyncClient,
    alice: ApiUser,
    bob: ApiUser,
    project: dict[str, Any],
    database_url: str,
    is_postgres: bool,
) -> None:
    """Bob's membership is being deleted (not yet committed) when Alice assigns him a new task:
    the create waits for the removal and then refuses him (422), instead of writing an
    assignee who is no longer a member."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite serialises every write")
    holder = await psycopg.AsyncConnection.connect(database_url)
    async with holder:
        async with holder.transaction():
            await holder.execute(
                "DELETE FROM project_member WHERE project_id = %s AND user_id = %s",
                [project["id"], bob.id],
            )
            creating = asyncio.create_task(
                client.post(
                    TASKS,
                    json={"title": "for bob", "project_id": project["id"], "assignee_id": bob.id},
                    headers=alice.headers,
                )
            )
            await asyncio.sleep(0.3)  # the create now waits on Bob's membership row
        created = await creating
    assert_problem(created, 422)
    assert await listing(client, alice) == []


async def test_a_listing_of_several_named_projects_is_one_page_in_order(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    """Two projects' tasks interleaved in time: the first page of `project_id=A&project_id=B` is
    the newest tasks of both, not one project's page followed by the other's."""
    first = await make_project(client, alice, name="A")
    second = await make_project(client, alice, name="B")
    for i in range(6):
        await create(client, alice, title=f"t{i}", project_id=(first, second)[i % 2]["id"])
    query = {"project_id": [first["id"], second["id"]], "limit": 3}
    page = (await client.get(TASKS, params=query, headers=alice.headers)).json()
    assert [item["title"] for item in page["items"]] == ["t5", "t4", "t3"]
    rest = await client.get(
        TASKS, params={**query, "limit": 10, "cursor": page["next_cursor"]}, headers=alice.headers
    )
    assert [item["title"] for item in rest.json()["items"]] == ["t2", "t1", "t0"]
