"""Every role rule holds under concurrency, as if the requests had run one after the other: a
project never ends up without exactly one owner, and an admin never removes someone who is an
admin when the removal commits. Each race is run many times, concurrently on PostgreSQL (SQLite
runs one writer at a time, so there the requests simply serialise and the same checks hold)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import ApiUser, make_user
from tests.projects.helpers import PROJECTS, add_member, make_project

ROUNDS = 12


async def _members(client: httpx.AsyncClient, viewer: ApiUser, project_id: str) -> dict[str, str]:
    response = await client.get(f"{PROJECTS}/{project_id}/members", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return {member["username"]: member["role"] for member in response.json()["items"]}


async def test_a_transfer_racing_the_new_owners_account_deletion_leaves_exactly_one_owner(
    client: httpx.AsyncClient,
) -> None:
    owner = await make_user(client, "owner")
    for round_ in range(ROUNDS):
        heir = await make_user(client, f"heir{round_}")
        project = await make_project(client, owner)
        await add_member(client, owner, project["id"], heir.username, "editor")

        transferred, deleted = await asyncio.gather(
            client.post(
                f"{PROJECTS}/{project['id']}/transfer",
                json={"username": heir.username},
                headers=owner.headers,
            ),
            client.delete("/api/v1/users/me", headers=heir.headers),
        )

        members = await _members(client, owner, project["id"])
        assert list(members.values()).count("owner") == 1, (round_, members)
        if transferred.status_code == 200:  # the transfer first: the heir owns a shared project
            assert deleted.status_code == 409, (round_, deleted.text)
            assert members == {owner.username: "admin", heir.username: "owner"}
        else:  # the deletion first: the heir is no longer a member
            assert (transferred.status_code, deleted.status_code) == (404, 204), round_
            assert members == {owner.username: "owner"}


@pytest.mark.parametrize(
    ("change", "method", "body", "done"),
    [("removes", "DELETE", None, 204), ("demotes", "PUT", {"role": "viewer"}, 200)],
)
async def test_an_admin_never_changes_someone_made_admin_by_a_concurrent_change(
    client: httpx.AsyncClient, change: str, method: str, body: dict[str, str] | None, done: int
) -> None:
    """The owner makes E an admin while admin A removes or demotes E. Either order, run one after
    the other, ends with E an admin: made admin first, A is refused (403); A first, the owner's
    PUT then makes E an admin. Never both answered as done with E gone or demoted, never a false
    409 for the owner."""
    owner = await make_user(client, "owner")
    admin = await make_user(client, "admin")
    for round_ in range(ROUNDS):
        promoted = await make_user(client, f"promoted{round_}")
        project = await make_project(client, owner)
        await add_member(client, owner, project["id"], admin.username, "admin")
        await add_member(client, owner, project["id"], promoted.username, "editor")
        member_url = f"{PROJECTS}/{project['id']}/members/{promoted.username}"

        put, by_admin = await asyncio.gather(
            client.put(member_url, json={"role": "admin"}, headers=owner.headers),
            client.request(method, member_url, json=body, headers=admin.headers),
        )

        assert put.status_code == 200, (change, round_, put.text)
        assert by_admin.status_code in (done, 403), (change, round_, by_admin.text)
        members = await _members(client, owner, project["id"])
        assert members[promoted.username] == "admin", (change, round_, members)
