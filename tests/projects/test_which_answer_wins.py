"""Which answer wins: the caller's role is decided before anything about the target, so a member
who may not change members gets 403 whoever they name (an unknown user, a non-member, the
owner); only the owner learns that the owner's own role cannot change (409)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import assert_problem
from tests.projects.helpers import People, Team

Request = tuple[str, str, dict[str, Any] | None]


def _requests(team: Team) -> dict[str, Request]:
    members = f"{team.url}/members"
    owner = team.owner.username
    return {
        "change the owner's role": ("PUT", f"{members}/{owner}", {"role": "viewer"}),
        "add an unknown user": ("PUT", f"{members}/nobody-here", {"role": "viewer"}),
        "remove a non-member": ("DELETE", f"{members}/{team.outsider.username}", None),
        "remove an unknown user": ("DELETE", f"{members}/nobody-here", None),
        "remove the owner": ("DELETE", f"{members}/{owner}", None),
    }


@pytest.mark.parametrize("actor", ["viewer", "commenter", "editor"])
@pytest.mark.parametrize(
    "attempt",
    [
        "change the owner's role",
        "add an unknown user",
        "remove a non-member",
        "remove an unknown user",
        "remove the owner",
    ],
)
async def test_a_member_below_admin_gets_403_whatever_the_target(
    client: httpx.AsyncClient, actor: str, attempt: str
) -> None:
    people = People(client)
    team = await people.team()
    before = await people.snapshot(team)
    method, path, body = _requests(team)[attempt]

    response = await client.request(method, path, json=body, headers=team.as_role(actor).headers)

    assert_problem(response, 403)
    assert await people.snapshot(team) == before


@pytest.mark.parametrize("attempt", ["change the owner's role", "remove the owner"])
async def test_an_admin_acting_on_the_owner_gets_403_naming_the_owner_role(
    client: httpx.AsyncClient, attempt: str
) -> None:
    people = People(client)
    team = await people.team()
    method, path, body = _requests(team)[attempt]

    response = await client.request(method, path, json=body, headers=team.as_role("admin").headers)

    assert "owner" in assert_problem(response, 403)["detail"]


@pytest.mark.parametrize(
    ("attempt", "status"),
    [("add an unknown user", 404), ("remove a non-member", 404), ("remove an unknown user", 404)],
)
async def test_an_admin_learns_about_the_target_only_after_the_role_check(
    client: httpx.AsyncClient, attempt: str, status: int
) -> None:
    people = People(client)
    team = await people.team()
    method, path, body = _requests(team)[attempt]

    response = await client.request(method, path, json=body, headers=team.as_role("admin").headers)

    assert_problem(response, status)


async def test_only_the_owner_gets_409_for_the_owners_own_role(client: httpx.AsyncClient) -> None:
    people = People(client)
    team = await people.team()
    method, path, body = _requests(team)["change the owner's role"]

    response = await client.request(method, path, json=body, headers=team.owner.headers)

    assert_problem(response, 409)


async def test_an_admin_making_an_admin_gets_403_even_for_an_unknown_user(
    client: httpx.AsyncClient,
) -> None:
    people = People(client)
    team = await people.team()

    response = await client.put(
        f"{team.url}/members/nobody-here",
        json={"role": "admin"},
        headers=team.as_role("admin").headers,
    )

    assert "owner" in assert_problem(response, 403)["detail"]
