"""A project with one member of every role, and what it looks like from its owner's side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers import API, ApiUser, make_user

PROJECTS = f"{API}/projects"
MEMBER_ROLES = ("admin", "editor", "commenter", "viewer")
# Who acts in the role matrices, those refused first: a refusal changes nothing, so the next actor
# can reuse the same team.
ACTORS = ("non-member", "removed", "viewer", "commenter", "editor", "admin", "owner")


@dataclass
class Team:
    project_id: str
    owner: ApiUser
    members: dict[str, ApiUser]  # by role: admin, editor, commenter, viewer, victim (a viewer)
    outsider: ApiUser
    removed: ApiUser  # was a viewer, removed before the test acts

    def as_role(self, role: str) -> ApiUser:
        return {"owner": self.owner, "non-member": self.outsider, "removed": self.removed}.get(
            role
        ) or self.members[role]

    @property
    def url(self) -> str:
        return f"{PROJECTS}/{self.project_id}"


async def make_project(client: httpx.AsyncClient, owner: ApiUser, **fields: Any) -> dict[str, Any]:
    response = await client.post(PROJECTS, json={"name": "Launch", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_member(
    client: httpx.AsyncClient, owner: ApiUser, project_id: str, username: str, role: str
) -> None:
    response = await client.put(
        f"{PROJECTS}/{project_id}/members/{username}", json={"role": role}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


class People:
    """Users made once per test: each team reuses them in a project of its own."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.users: dict[str, ApiUser] = {}

    async def user(self, name: str) -> ApiUser:
        if name not in self.users:
            self.users[name] = await make_user(self.client, name)
        return self.users[name]

    async def team(self) -> Team:
        owner = await self.user("owner")
        project = await make_project(self.client, owner)
        members = {}
        for role in (*MEMBER_ROLES, "victim", "removed"):
            members[role] = await self.user(role)
            stored_role = role if role in MEMBER_ROLES else "viewer"
            await add_member(self.client, owner, project["id"], role, stored_role)
        removed = members.pop("removed")
        gone = await self.client.delete(
            f"{PROJECTS}/{project['id']}/members/removed", headers=owner.headers
        )
        assert gone.status_code == 204, gone.text
        return Team(project["id"], owner, members, await self.user("outsider"), removed)

    async def snapshot(self, team: Team) -> Any:
        """What an action refused must leave as it was: the project and its members."""
        project = await self.client.get(team.url, headers=team.owner.headers)
        members = await self.client.get(f"{team.url}/members", headers=team.owner.headers)
        return project.status_code, project.json(), members.json()
