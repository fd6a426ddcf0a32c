"""Comments on tasks: who may read, write, edit and delete them (the roles table, in SQL), the
Comment JSON, and what a refusal leaves (nothing changed)."""

from __future__ import annotations

import httpx
import pytest

from tests.comments.helpers import (
    COMMENT_FIELDS,
    all_comments,
    comment_url,
    comments_url,
    make_comment,
    post_comment,
)
from tests.helpers import API, ApiUser, assert_problem, create_task
from tests.projects.helpers import People, Team
from tests.tasks.helpers import ts


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await People(client).team()


@pytest.fixture
async def task_id(client: httpx.AsyncClient, team: Team) -> str:
    task = await create_task(client, team.owner, title="shared", project_id=team.project_id)
    return str(task["id"])


class TestPersonalTask:
    async def test_owner_comments_201_with_location_and_the_contract_fields(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        task = await create_task(client, alice)

        response = await post_comment(client, alice, task["id"], "first!")

        assert response.status_code == 201, response.text
        comment = response.json()
        assert set(comment) == COMMENT_FIELDS
        assert response.headers["location"] == f"{API}/comments/{comment['id']}"
        assert comment["task_id"] == task["id"]
        assert comment["author_id"] == alice.id
        assert comment["author"] == "alice"
        assert comment["body"] == "first!"
        assert ts(comment["created_at"]) == ts(comment["updated_at"])
        assert await all_comments(client, alice, task["id"]) == [comment]

    async def test_someone_else_gets_404_for_everything(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        task = await create_task(client, alice)
        comment = await make_comment(client, alice, task["id"])

        responses = [
            await client.get(comments_url(task["id"]), headers=bob.headers),
            await post_comment(client, bob, task["id"]),
            await client.patch(comment_url(comment["id"]), json={"body": "x"}, headers=bob.headers),
            await client.delete(comment_url(comment["id"]), headers=bob.headers),
        ]

        details = [assert_problem(response, 404)["detail"] for response in responses]
        assert details == ["Task not found", "Task not found"] + ["Comment not found"] * 2
        assert await all_comments(client, alice, task["id"]) == [comment]

    async def test_unknown_task_and_comment_are_404(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        unknown = "00000000-0000-4000-8000-000000000000"
        assert_problem(await client.get(comments_url(unknown), headers=alice.headers), 404)
        assert_problem(await post_comment(client, alice, unknown), 404)
        edit = await client.patch(comment_url(unknown), json={"body": "x"}, headers=alice.headers)
        assert_problem(edit, 404)
        assert_problem(await client.delete(comment_url(unknown), headers=alice.headers), 404)


class TestProjectTask:
    async def test_commenter_can_comment_viewer_gets_403(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        allowed = await post_comment(client, team.members["commenter"], task_id, "from commenter")
        refused = await post_comment(client, team.members["viewer"], task_id, "from viewer")

        assert allowed.status_code == 201, allowed.text
        assert "commenter" in assert_problem(refused, 403)["detail"]
        bodies = [c["body"] for c in await all_comments(client, team.owner, task_id)]
        assert bodies == ["from commenter"]

    async def test_non_member_gets_404_for_comments(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        comment = await make_comment(client, team.owner, task_id)
        for outsider in (team.outsider, team.removed):
            responses = [
                await client.get(comments_url(task_id), headers=outsider.headers),
                await post_comment(client, outsider, task_id),
                await client.patch(
                    comment_url(comment["id"]), json={"body": "x"}, headers=outsider.headers
                ),
                await client.delete(comment_url(comment["id"]), headers=outsider.headers),
            ]
            for response in responses:
                assert_problem(response, 404)
        assert await all_comments(client, team.owner, task_id) == [comment]

    async def test_every_member_reads_the_comments(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        comment = await make_comment(client, team.members["editor"], task_id)
        for member in (team.owner, *team.members.values()):
            assert await all_comments(client, member, task_id) == [comment]

    async def test_only_the_author_edits_even_the_owner_gets_403(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        author = team.members["commenter"]
        comment = await make_comment(client, author, task_id, "typo")
        for other in (team.owner, team.members["admin"], team.members["editor"]):
            response = await client.patch(
                comment_url(comment["id"]), json={"body": "not mine"}, headers=other.headers
            )
            assert "author" in assert_problem(response, 403)["detail"]
        assert await all_comments(client, team.owner, task_id) == [comment]

        edited = await client.patch(
            comment_url(comment["id"]), json={"body": "fixed"}, headers=author.headers
        )

        assert edited.status_code == 200, edited.text
        body = edited.json()
        assert body["body"] == "fixed"
        assert body["author"] == author.username
        assert body["created_at"] == comment["created_at"]
        assert ts(body["updated_at"]) >= ts(comment["updated_at"])
        assert await all_comments(client, team.members["viewer"], task_id) == [body]

    async def test_admin_deletes_anyones_comment_editor_gets_403(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        comment = await make_comment(client, team.members["commenter"], task_id)

        refused = await client.delete(
            comment_url(comment["id"]), headers=team.members["editor"].headers
        )
        assert "admin" in assert_problem(refused, 403)["detail"]
        assert await all_comments(client, team.owner, task_id) == [comment]

        deleted = await client.delete(
            comment_url(comment["id"]), headers=team.members["admin"].headers
        )
        assert deleted.status_code == 204, deleted.text
        assert await all_comments(client, team.owner, task_id) == []
        again = await client.delete(
            comment_url(comment["id"]), headers=team.members["admin"].headers
        )
        assert_problem(again, 404)

    async def test_the_author_deletes_their_own(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        author = team.members["commenter"]
        comment = await make_comment(client, author, task_id)

        deleted = await client.delete(comment_url(comment["id"]), headers=author.headers)

        assert deleted.status_code == 204, deleted.text
        assert await all_comments(client, team.owner, task_id) == []

    async def test_a_removed_author_can_no_longer_touch_their_comment(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        author = team.members["commenter"]
        comment = await make_comment(client, author, task_id)
        removed = await client.delete(
            f"{team.url}/members/{author.username}", headers=team.owner.headers
        )
        assert removed.status_code == 204, removed.text

        edit = await client.patch(
            comment_url(comment["id"]), json={"body": "x"}, headers=author.headers
        )
        delete = await client.delete(comment_url(comment["id"]), headers=author.headers)

        assert_problem(edit, 404)
        assert_problem(delete, 404)
        assert await all_comments(client, team.owner, task_id) == [comment]

    async def test_an_author_demoted_to_viewer_gets_403_naming_commenter(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        author = team.members["commenter"]
        comment = await make_comment(client, author, task_id)
        demoted = await client.put(
            f"{team.url}/members/{author.username}",
            json={"role": "viewer"},
            headers=team.owner.headers,
        )
        assert demoted.status_code == 200, demoted.text

        edit = await client.patch(
            comment_url(comment["id"]), json={"body": "x"}, headers=author.headers
        )
        delete = await client.delete(comment_url(comment["id"]), headers=author.headers)

        assert "commenter" in assert_problem(edit, 403)["detail"]
        assert "commenter" in assert_problem(delete, 403)["detail"]
        assert await all_comments(client, team.owner, task_id) == [comment]

    async def test_archived_project_comment_writes_403_reads_200(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        mine = await make_comment(client, team.members["admin"], task_id)
        archived = await client.patch(team.url, json={"archived": True}, headers=team.owner.headers)
        assert archived.status_code == 200, archived.text
        admin = team.members["admin"]

        responses = [
            await post_comment(client, admin, task_id),
            await client.patch(comment_url(mine["id"]), json={"body": "x"}, headers=admin.headers),
            await client.delete(comment_url(mine["id"]), headers=admin.headers),
            await client.delete(comment_url(mine["id"]), headers=team.owner.headers),
        ]

        for response in responses:
            assert "archived" in assert_problem(response, 403)["detail"]
        assert await all_comments(client, team.members["viewer"], task_id) == [mine]

    async def test_deleting_the_task_deletes_its_comments(
        self, client: httpx.AsyncClient, team: Team, task_id: str
    ) -> None:
        comment = await make_comment(client, team.members["commenter"], task_id)
        deleted = await client.delete(f"{API}/tasks/{task_id}", headers=team.owner.headers)
        assert deleted.status_code == 204, deleted.text

        edit = await client.patch(
            comment_url(comment["id"]),
            json={"body": "x"},
            headers=team.members["commenter"].headers,
        )

        assert_problem(edit, 404)
        assert_problem(await client.get(comments_url(task_id), headers=team.owner.headers), 404)


async def test_author_of_deleted_account_shows_null(
    client: httpx.AsyncClient, team: Team, task_id: str
) -> None:
    author = team.members["commenter"]
    comment = await make_comment(client, author, task_id, "I was here")

    gone = await client.delete(f"{API}/users/me", headers=author.headers)

    assert gone.status_code == 204, gone.text
    [kept] = await all_comments(client, team.owner, task_id)
    assert kept == {**comment, "author_id": None, "author": None}
    # Nobody is its author any more: no member edits it; an admin still deletes it.
    edit = await client.patch(
        comment_url(comment["id"]), json={"body": "x"}, headers=team.owner.headers
    )
    assert_problem(edit, 403)
    deleted = await client.delete(comment_url(comment["id"]), headers=team.owner.headers)
    assert deleted.status_code == 204, deleted.text
