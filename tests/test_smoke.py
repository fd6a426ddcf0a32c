from __future__ import annotations

import httpx

from tests.helpers import API, ApiUser


async def test_health_is_ok_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_registered_user_reads_own_profile(client: httpx.AsyncClient, alice: ApiUser) -> None:
    response = await client.get(f"{API}/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
