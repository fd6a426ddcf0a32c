"""Issue 18's defects, tried against a served API the way a client would (not part of the suite).

Start a server with low limits, then run this against it:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<db> JWT_SECRET=<32+ bytes> WEB_CONCURRENCY=2 \
    BCRYPT_ROUNDS=4 MAX_TASKS_PER_USER=5 MAX_TASKS_PER_PROJECT=5 RATE_LIMIT_REGISTER=10000/hour \
    PORT=8765 python -m taskhub serve
    python scripts/checks/concurrency.py http://127.0.0.1:8765

It prints, per item, what the races produced; every "wrong" count must be 0.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter

import httpx

PASSWORD = "correct horse battery staple 1"  # noqa: S105  # pragma: allowlist secret - a throwaway account


class Api:
    def __init__(self, client: httpx.AsyncClient, base: str) -> None:
        self.client, self.api, self.tag = client, f"{base}/api/v1", uuid.uuid4().hex[:6]

    async def user(self, name: str) -> dict[str, str]:
        body = {"username": f"{name}{self.tag}", "password": PASSWORD}
        registered = await self.client.post(f"{self.api}/auth/register", json=body)
        registered.raise_for_status()
        return await self.login(name)

    async def login(self, name: str, password: str = PASSWORD) -> dict[str, str]:
        body = {"username": f"{name}{self.tag}", "password": password}
        response = await self.client.post(f"{self.api}/auth/login", json=body)
        response.raise_for_status()
        return {"Authorization": "Bearer " + response.json()["access_token"]}

    def name(self, name: str) -> str:
        return f"{name}{self.tag}"

    async def project(self, owner: dict[str, str], **members: str) -> str:
        made = await self.client.post(f"{self.api}/projects", json={"name": "P"}, headers=owner)
        project_id: str = made.json()["id"]
        for name, role in members.items():
            url = f"{self.api}/projects/{project_id}/members/{self.name(name)}"
            await self.client.put(url, json={"role": role}, headers=owner)
        return project_id

    async def roles(self, project_id: str, viewer: dict[str, str]) -> dict[str, str]:
        response = await self.client.get(
            f"{self.api}/projects/{project_id}/members", headers=viewer
        )
        return {m["username"]: m["role"] for m in response.json()["items"]}


async def transfer_against_deletion(api: Api) -> None:
    outcomes: Counter[tuple[int, int]] = Counter()
    wrong = 0
    owner = await api.user("owner")
    for i in range(10):
        await api.user(f"heir{i}")
        heir = await api.login(f"heir{i}")
        project_id = await api.project(owner, **{f"heir{i}": "editor"})
        transferred, deleted = await asyncio.gather(
            api.client.post(
                f"{api.api}/projects/{project_id}/transfer",
                json={"username": api.name(f"heir{i}")},
                headers=owner,
            ),
            api.client.delete(f"{api.api}/users/me", headers=heir),
        )
        outcomes[transferred.status_code, deleted.status_code] += 1
        wrong += list((await api.roles(project_id, owner)).values()).count("owner") != 1
    print(
        f"1. transfer vs the heir's account deletion, 10 tries: {dict(outcomes)}; "
        f"projects without exactly one owner: {wrong}"
    )


async def promotion_against_removal(api: Api) -> None:
    outcomes: Counter[tuple[int, int]] = Counter()
    wrong = 0
    owner, admin = await api.user("o"), await api.user("a")
    for i in range(12):
        await api.user(f"e{i}")
        project_id = await api.project(owner, a="admin", **{f"e{i}": "editor"})
        url = f"{api.api}/projects/{project_id}/members/{api.name(f'e{i}')}"
        put, removal = await asyncio.gather(
            api.client.put(url, json={"role": "admin"}, headers=owner),
            api.client.delete(url, headers=admin),
        )
        outcomes[put.status_code, removal.status_code] += 1
        ended = (await api.roles(project_id, owner)).get(api.name(f"e{i}"))
        wrong += put.status_code != 200 or ended != "admin"
    print(
        f"2. owner makes E admin vs admin removes E, 12 tries: {dict(outcomes)}; "
        f"E not an admin at the end, or a refused PUT: {wrong}"
    )


async def quotas(api: Api) -> None:
    owner = await api.user("q")
    personal = await asyncio.gather(
        *(
            api.client.post(f"{api.api}/tasks", json={"title": f"t{i}"}, headers=owner)
            for i in range(20)
        )
    )
    project_id = await api.project(owner)
    in_project = await asyncio.gather(
        *(
            api.client.post(
                f"{api.api}/tasks", json={"title": f"t{i}", "project_id": project_id}, headers=owner
            )
            for i in range(20)
        )
    )
    print(
        "3. 20 concurrent creates under MAX_TASKS_PER_USER=5: "
        f"{dict(Counter(r.status_code for r in personal))}; under MAX_TASKS_PER_PROJECT=5: "
        f"{dict(Counter(r.status_code for r in in_project))}"
    )


async def login_burst(api: Api) -> None:
    await api.user("victim")
    body = {"username": api.name("victim"), "password": "not the password at all"}
    burst = await asyncio.gather(
        *(api.client.post(f"{api.api}/auth/login", json=body) for _ in range(150))
    )
    print(
        f"4. 150 concurrent wrong passwords, one user, one address: "
        f"{dict(Counter(r.status_code for r in burst))}"
    )


async def ordinary_burst(api: Api) -> None:
    await api.user("burst")
    body = {"username": api.name("burst"), "password": PASSWORD}
    burst = await asyncio.gather(
        *(api.client.post(f"{api.api}/auth/login", json=body) for _ in range(10))
    )
    print(f"5. 10 concurrent logins of one user: {dict(Counter(r.status_code for r in burst))}")


async def which_answer_wins(api: Api) -> None:
    owner, admin, viewer = await api.user("wo"), await api.user("wa"), await api.user("wv")
    project_id = await api.project(owner, wa="admin", wv="viewer")
    members = f"{api.api}/projects/{project_id}/members"
    checks = {
        "viewer changes the owner's role": ("PUT", f"{members}/{api.name('wo')}", viewer),
        "viewer adds an unknown user": ("PUT", f"{members}/nobody{api.tag}", viewer),
        "viewer removes a non-member": ("DELETE", f"{members}/{api.name('q')}", viewer),
        "admin changes the owner's role": ("PUT", f"{members}/{api.name('wo')}", admin),
        "owner changes their own role": ("PUT", f"{members}/{api.name('wo')}", owner),
    }
    for label, (method, url, who) in checks.items():
        body = {"role": "viewer"} if method == "PUT" else None
        response = await api.client.request(method, url, json=body, headers=who)
        print(f"6. {label}: {response.status_code}")
    roles = await api.client.patch(f"{api.api}/projects/roles", json={}, headers=owner)
    print(f"6. PATCH /projects/roles: {roles.status_code}, Allow: {roles.headers.get('allow')}")
    for value in ("yes", 1, "true"):
        response = await api.client.patch(
            f"{api.api}/projects/{project_id}", json={"archived": value}, headers=owner
        )
        print(f"7. PATCH archived {value!r}: {response.status_code}")
    project = await api.client.get(f"{api.api}/projects/{project_id}", headers=owner)
    print(f"7. archived afterwards: {project.json()['archived']}")


async def main(base: str) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        api = Api(client, base)
        await transfer_against_deletion(api)
        await promotion_against_removal(api)
        await quotas(api)
        await which_answer_wins(api)
        await ordinary_burst(api)
        await login_burst(api)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8765"))
