"""/docs: Swagger UI from the package's own files, under a strict CSP, removable by config."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser


async def test_docs_page_loads_only_same_origin_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources, "the page references no asset"
    assert all(source.startswith("/") and not source.startswith("//") for source in sources)
    for source in sources:
        assert (await client.get(source)).status_code == 200, source


async def test_docs_page_runs_under_a_restrictive_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    policy = (await client.get("/docs")).headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


async def test_only_the_listed_swagger_files_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status_code == 200
    for name in ("index.html", "swagger-initializer.js", "..%2Fpyproject.toml", "nope.js"):
        assert (await client.get(f"/docs/static/{name}")).status_code == 404, name


async def test_docs_enabled_false_removes_docs_and_openapi(database_url: str) -> None:
    app = create_app(make_settings(database_url, DOCS_ENABLED=False))
    try:
        async with client_of(app) as http:
            for path in ("/docs", "/docs/static/swagger-ui-bundle.js", "/openapi.json"):
                assert (await http.get(path)).status_code == 404, path
    finally:
        await app.state.database.dispose()


async def test_api_responses_are_not_stored_and_send_no_referrer(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for response in (
        await client.get(f"{API}/users/me", headers=alice.headers),
        await client.post(f"{API}/auth/login", data={"username": "x", "password": "y"}),
        await client.get(f"{API}/tasks"),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
    health = await client.get("/health")
    assert health.headers["referrer-policy"] == "no-referrer"


async def test_authenticated_responses_say_what_the_rate_limit_leaves(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    response = await client.get(f"{API}/users/me", headers=alice.headers)
    limit = app.state.settings.RATE_LIMIT_API.split("/")[0]
    assert response.headers["ratelimit-limit"] == limit
    assert int(response.headers["ratelimit-remaining"]) == int(limit) - 1
    assert response.headers["x-ratelimit-remaining"] == response.headers["ratelimit-remaining"]
