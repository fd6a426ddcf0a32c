"""CPU microseconds per request, in-process: the app's ASGI callable driven directly (no HTTP
server, no load generator), against the database `make bench` seeded.

A wrk run on a shared two-core machine drifts by ±15 %; the process's own CPU time per request
drifts much less, so this is how a change to the request path is judged before a full
`make bench` (docs/benchmarks.md). Take the smallest of a few runs.

    .venv/bin/python scripts/bench/cpu_per_request.py [requests] [route ...]
    routes: health me list filter get get_project create patch, and me_token list_token (a personal
    access token instead of a session)   (default: all but the token ones); CONCURRENCY=32 runs them side by side
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import dbsetup
import psycopg
import uvloop

os.environ.update(
    # Production refuses RATE_LIMIT_ENABLED=false; "test" differs only in the start-up checks and
    # the bcrypt default, set explicitly below.
    ENVIRONMENT="test",
    DATABASE_URL=dbsetup.bench_url(),
    JWT_SECRET=secrets.token_urlsafe(48),
    REDIS_URL="redis://127.0.0.1:6379/15",
    RATE_LIMIT_ENABLED="false",
    BCRYPT_ROUNDS=str(dbsetup.BCRYPT_COST),
    LOG_LEVEL="WARNING",
)

from taskhub.main import create_app  # noqa: E402 - reads the environment set above

WARMUP = 200
Headers = list[tuple[bytes, bytes]]
Call = Callable[..., Awaitable[tuple[int, bytes]]]


def caller(app: Any, state: dict[str, Any]) -> Call:
    async def call(
        method: str, path: str, query: bytes = b"", headers: Headers = (), body: bytes = b""
    ) -> tuple[int, bytes]:
        sent_headers = [(b"host", b"bench"), *headers]
        if body:
            sent_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": sent_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": state,
        }
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    return call


async def measure(count: int, routes: list[str], concurrency: int) -> None:
    app = create_app()
    state: dict[str, Any] = {}
    async with app.router.lifespan_context(app) as lifespan_state:
        state.update(lifespan_state or {})
        call = caller(app, state)

        async def login(username: str) -> Headers:
            form = f"grant_type=password&username={username}&password={dbsetup.BENCH_PASSWORD}"
            status, body = await call(
                "POST",
                "/api/v1/auth/login",
                headers=[(b"content-type", b"application/x-www-form-urlencoded")],
                body=form.encode(),
            )
            if status != 200:
                raise RuntimeError(f"login failed: {status} {body[:200]!r}")
            return [(b"authorization", b"Bearer " + json.loads(body)["access_token"].encode())]

        auth = await login(dbsetup.BENCH_USER)
        _, page = await call("GET", "/api/v1/tasks", b"limit=1", auth)
        task_id = json.loads(page)["items"][0]["id"]
        # projects_50 has no personal task: its first task is in one of its projects.
        member = await login(dbsetup.PROJECT_USER)
        _, page = await call("GET", "/api/v1/tasks", b"limit=1", member)
        project_task_id = json.loads(page)["items"][0]["id"]
        new_task = b'{"title":"cpu bench","priority":"high","due_at":"2027-01-05T09:00:00Z"}'
        token: Headers = []
        if any(route.endswith("_token") for route in routes):  # a personal access token
            status, made = await call(
                "POST",
                "/api/v1/tokens",
                headers=[*auth, (b"content-type", b"application/json")],
                body=b'{"name":"cpu bench","scopes":["tasks:read"]}',
            )
            if status != 201:
                raise RuntimeError(f"making a token failed: {status} {made[:200]!r}")
            token = [(b"authorization", b"Bearer " + json.loads(made)["token"].encode())]
        requests: dict[str, tuple[str, str, bytes, Headers, bytes]] = {
            "health": ("GET", "/health", b"", [], b""),
            "me": ("GET", "/api/v1/users/me", b"", auth, b""),
            "list": ("GET", "/api/v1/tasks", b"limit=50", auth, b""),
            "me_token": ("GET", "/api/v1/users/me", b"", token, b""),
            "list_token": ("GET", "/api/v1/tasks", b"limit=50", token, b""),
            "filter": ("GET", "/api/v1/tasks", b"limit=50&status=todo&sort=-due_at", auth, b""),
            "get": ("GET", f"/api/v1/tasks/{task_id}", b"", auth, b""),
            "get_project": ("GET", f"/api/v1/tasks/{project_task_id}", b"", member, b""),
            "create": (
                "POST",
                "/api/v1/tasks",
                b"",
                [*auth, (b"content-type", b"application/json")],
                new_task,
            ),
            "patch": (
                "PATCH",
                f"/api/v1/tasks/{task_id}",
                b"",
                [*auth, (b"content-type", b"application/json")],
                b'{"title":"cpu bench patch","status":"in_progress","priority":"low"}',
            ),
        }
        for route in routes:
            method, path, query, headers, body = requests[route]
            for _ in range(WARMUP):
                status, _ = await call(method, path, query, headers, body)
            if status >= 300:
                raise RuntimeError(f"{route}: {status}")
            per_worker = max(1, count // concurrency)

            async def worker(
                method: str = method,
                path: str = path,
                query: bytes = query,
                headers: Headers = headers,
                body: bytes = body,
            ) -> None:
                for _ in range(per_worker):
                    await call(method, path, query, headers, body)

            started = time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            spent = time.process_time() - started
            micros = spent / (per_worker * concurrency) * 1e6
            print(f"{route:8s} {micros:7.0f} us of CPU per request")
    with psycopg.connect(dbsetup.bench_dsn()) as conn:
        conn.execute("DELETE FROM task WHERE title = 'cpu bench'")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    routes = sys.argv[2:] or ["health", "me", "list", "filter", "get", "create", "patch"]
    concurrency = int(os.environ.get("CONCURRENCY", "1"))
    uvloop.run(measure(count, routes, concurrency))


if __name__ == "__main__":
    main()
