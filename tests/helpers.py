"""Small helpers the tests share: make a user through the API, build auth headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1"
DEFAULT_PASSWORD = "plum-kettle-orbit-42"  # not in the common-password list


@dataclass
class ApiUser:
    username: str
    password: str
    id: str
    access_token: str
    refresh_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register", json={"username": username, "password": password}
    )


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(f"{API}/auth/login", data={"username": username, "password": password})


async def make_user(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> ApiUser:
    registered = await register(client, username, password)
    assert registered.status_code == 201, registered.text
    tokens = await login(client, username, password)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return ApiUser(
        username=username,
        password=password,
        id=registered.json()["id"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def create_task(client: httpx.AsyncClient, user: ApiUser, **fields: Any) -> dict[str, Any]:
    payload = {"title": "a task", **fields}
    response = await client.post(f"{API}/tasks", json=payload, headers=user.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def make_token(
    client: httpx.AsyncClient, user: ApiUser, *scopes: str, **fields: Any
) -> dict[str, Any]:
    """A personal access token of `user` (its body, the secret in `token`) with these scopes."""
    payload = {"name": "script", "scopes": list(scopes), **fields}
    response = await client.post(f"{API}/tokens", json=payload, headers=user.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    return body
