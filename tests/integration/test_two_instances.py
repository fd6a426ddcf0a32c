"""Two real API instances on one database and one Redis, plus a real Celery worker and beat: the
app keeps no state of its own that matters, so a client may talk to either instance, and losing
one instance loses no acknowledged request.

Redis must be running (CI starts it): without it this test fails, it is never skipped. The API
instances keep their rate-limit windows in Redis DB 12 under a key prefix of the test's own
(RATE_LIMIT_KEY_PREFIX, deleted after it), so two runs at once never share a window; the API never
talks to the broker, so worker and beat get the worker tests' DB 11 under a key prefix of their
own (`celery_processes`, `broker_key_prefix` from test_worker).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import served_client
from tests.helpers import API, DEFAULT_PASSWORD
from tests.integration.served import Server, start_server
from tests.integration.test_worker import (  # noqa: F401 - fixtures, used by name
    CeleryProcesses,
    broker_key_prefix,
    celery_processes,
    clear_redis,
)

LIMITS_REDIS_URL = "redis://127.0.0.1:6379/12"  # the API instances' rate-limit windows only
LOAD_REQUESTS = 40
KILL_AFTER = 10  # completed creations before instance A is killed
TIMEOUT = 10.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: httpx.Client, username: str, password: str = DEFAULT_PASSWORD) -> httpx.Response:
    return http.post(f"{API}/auth/login", data={"username": username, "password": password})


def register(http: httpx.Client, username: str) -> None:
    response = http.post(
        f"{API}/auth/register", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 201, response.text


def me_status(http: httpx.Client, token: str) -> int:
    return http.get(f"{API}/users/me", headers=bearer(token)).status_code


@pytest.fixture
def limits_key_prefix() -> Iterator[str]:
    """The API instances' own rate-limit key prefix, its keys deleted after the test."""
    prefix = f"taskhub-test-limits-{uuid.uuid4().hex}"
    yield prefix
    with suppress(redis.ConnectionError, pytest.fail.Exception):
        clear_redis(prefix, LIMITS_REDIS_URL)


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_two_api_instances_share_all_state(
    database_url: str,
    tmp_path: Path,
    celery_processes: CeleryProcesses,  # noqa: F811
    broker_key_prefix: str,  # noqa: F811
    limits_key_prefix: str,
) -> None:
    clear_redis(broker_key_prefix)
    clear_redis(limits_key_prefix, LIMITS_REDIS_URL)  # also fails the test at once without Redis
    # Started first: the worker takes the longest to come up, and runs while the servers start.
    celery_processes.start_worker("worker")
    celery_processes.start_beat()

    shared = {
        "JWT_SECRET": secrets.token_urlsafe(48),  # one deployment: one signing secret
        "REDIS_URL": LIMITS_REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": limits_key_prefix,
        "RATE_LIMIT_LOGIN": "4/minute",
        "REMINDER_SCAN_INTERVAL": "1",
    }
    with ExitStack() as stack:
        server_a = stack.enter_context(start_server(database_url, tmp_path, **shared))
        server_b = stack.enter_context(start_server(database_url, tmp_path, **shared))
        a = stack.enter_context(served_client(server_a.base_url, timeout=TIMEOUT))
        b = stack.enter_context(served_client(server_b.base_url, timeout=TIMEOUT))

        # 1. A token issued by A is accepted by B.
        register(a, "two-inst-user")
        first = login(a, "two-inst-user")
        assert first.status_code == 200, first.text
        assert me_status(b, first.json()["access_token"]) == 200

        # 1b. Personal access tokens: one deleted on A is refused by B at once, one reported as
        # leaked on B is refused by A at once (no instance keeps a token lookup of its own).
        register(a, "two-inst-tokens")
        owner = login(a, "two-inst-tokens")
        assert owner.status_code == 200, owner.text
        session = bearer(owner.json()["access_token"])
        made = [
            a.post(f"{API}/tokens", json={"name": name, "scopes": ["tasks:read"]}, headers=session)
            for name in ("deleted", "leaked")
        ]
        deleted, leaked = (response.json() for response in made)
        assert me_status(b, deleted["token"]) == me_status(a, leaked["token"]) == 200
        assert a.delete(f"{API}/tokens/{deleted['id']}", headers=session).status_code == 204
        assert me_status(b, deleted["token"]) == 401
        reported = b.post(f"{API}/tokens/revoke", json={"tokens": [leaked["token"]]})
        assert reported.status_code == 202, reported.text
        assert me_status(a, leaked["token"]) == 401

        # 2. A refresh token spent on A cannot be spent again on B; the reuse ends the session
        # on both instances.
        refreshed = a.post(
            f"{API}/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        reuse = b.post(f"{API}/auth/refresh", json={"refresh_token": first.json()["refresh_token"]})
        assert reuse.status_code == 401, reuse.text
        new_access = refreshed.json()["access_token"]
        assert me_status(a, new_access) == 401
        assert me_status(b, new_access) == 401

        # 3. Failed logins on A and on B count against one limit (4 per username and address).
        register(b, "two-inst-target")
        wrong = "not-" + DEFAULT_PASSWORD
        statuses = [login(http, "two-inst-target", wrong).status_code for http in (a, a, b, b)]
        assert statuses == [401, 401, 401, 401]
        fifth_a = login(a, "two-inst-target", wrong)
        fifth_b = login(b, "two-inst-target", wrong)
        assert fifth_a.status_code == 429, fifth_a.text
        assert fifth_b.status_code == 429, fifth_b.text

        # 4. One reminder, though two API instances run and beat schedules a scan every second.
        session = login(b, "two-inst-user")
        assert session.status_code == 200, session.text
        token = session.json()["access_token"]
        due = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        task = a.post(
            f"{API}/tasks", json={"title": "due soon", "due_at": due}, headers=bearer(token)
        )
        assert task.status_code == 201, task.text
        items = reminders(b, token, until_any=True)
        assert [n["task_id"] for n in items] == [task.json()["id"]], celery_processes.log("worker")
        time.sleep(3)  # about three more scans
        items = reminders(b, token, until_any=False)
        assert [n["task_id"] for n in items] == [task.json()["id"]], celery_processes.log("worker")

        # 5. A is killed in the middle of a load spread over A and B: B keeps serving, and no
        # acknowledged creation is lost.
        outcomes = load_with_kill(server_a, a, b, token)
        created = [location for _, _, location in outcomes if location is not None]
        from_b = [outcome for outcome in outcomes if outcome[0] == "B"]
        failed_a = [outcome for outcome in outcomes if outcome[0] == "A" and outcome[2] is None]
        assert all(location is not None for _, _, location in from_b), outcomes
        assert len(from_b) == LOAD_REQUESTS // 2
        assert failed_a, "no request reached A after it was killed"
        assert all(after_kill for _, after_kill, _ in failed_a), outcomes
        assert len(created) >= LOAD_REQUESTS // 2 + 1
        for location in created:
            found = b.get(location, headers=bearer(token))
            assert found.status_code == 200, (location, found.text)


def reminders(http: httpx.Client, token: str, *, until_any: bool) -> list[dict[str, object]]:
    """The notifications; with `until_any`, polled for up to ~20 s until there is one."""
    items: list[dict[str, object]] = []
    for _ in range(100 if until_any else 1):
        response = http.get(f"{API}/notifications", headers=bearer(token))
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items:
            break
        time.sleep(0.2)
    return items


def load_with_kill(
    server_a: Server, a: httpx.Client, b: httpx.Client, token: str
) -> list[tuple[str, bool, str | None]]:
    """LOAD_REQUESTS task creations alternating A and B from 4 threads; A's process group is
    SIGKILLed once KILL_AFTER have completed. Per request: the instance, whether it was sent after
    the kill (for a failed one: whether it failed after the signal), and the Location of a 201 (None when A could not be reached)."""
    kill_sent = threading.Event()  # set just before the signal: a failure comes after it
    killed = threading.Event()
    done = 0
    lock = threading.Lock()

    def create(index: int) -> tuple[str, bool, str | None]:
        nonlocal done
        name, http = ("A", a) if index % 2 == 0 else ("B", b)
        after_kill = killed.is_set()
        try:
            response = http.post(
                f"{API}/tasks", json={"title": f"load {index}"}, headers=bearer(token)
            )
        except httpx.TransportError:
            assert name == "A", f"request {index} to B failed"
            return name, kill_sent.is_set(), None
        assert response.status_code == 201, (name, index, response.text)
        with lock:
            done += 1
            if done == KILL_AFTER and not killed.is_set():
                kill_sent.set()
                os.killpg(server_a.process.pid, signal.SIGKILL)
                server_a.process.wait(timeout=TIMEOUT)
                killed.set()
        return name, after_kill, response.headers["location"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(create, range(LOAD_REQUESTS)))
    assert killed.is_set()
    return outcomes
