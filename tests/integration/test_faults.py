"""The served API under a small load while its real dependencies fail: a private PostgreSQL
cluster and a private redis-server (tests/private_servers.py), never the machine's shared ones.

(a) Redis stopped for a few seconds, then started again; (b) PostgreSQL restarted
(`pg_ctl restart -m fast`); (c) PostgreSQL stopped for 5 s, then started. Throughout: no 5xx but
503, every 503 with Retry-After, no request slower than DB_POOL_TIMEOUT + 2 s, a 2xx again
within 10 s of the server being back, without restarting the API, and every task whose create
was answered 201 is there at the end. The figures (counts, slowest request, recovery) are
printed and written to faults.json in the test's folder.

Slow (a minute or more): marked `faults`, left out of `make test`, run by `make test-faults`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import served_client
from tests.helpers import API, DEFAULT_PASSWORD
from tests.integration.served import PROJECT_ROOT, Server, start_server
from tests.private_servers import PrivatePostgres, PrivateRedis, private_postgres, private_redis

pytestmark = pytest.mark.faults

POOL_TIMEOUT = 2.0
SLOWEST_ALLOWED = POOL_TIMEOUT + 2.0
RECOVERED_WITHIN = 10.0
CLIENTS = 4
LOAD_BEFORE_FAULT = 2.0
# Load goes on this long after the server is back (and stops earlier once recovery is clear).
LOAD_AFTER_BACK = RECOVERED_WITHIN + 2.0
CALM_AFTER_RECOVERY = 2.0
PACE = 0.02  # seconds between a client's requests: a small load on a shared machine
READY_EVERY = 0.25
REQUEST_TIMEOUT = 30.0  # far above SLOWEST_ALLOWED: a slow answer is measured, not cut off
HEALTHY_WITHIN = 30.0


@dataclass(frozen=True)
class Outcome:
    what: str  # "read", "create" or "ready"
    started: float  # time.monotonic()
    elapsed: float
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    task_id: str | None = None


@dataclass
class Stack:
    postgres: PrivatePostgres
    redis: PrivateRedis
    server: Server
    tokens: list[str]
    folder: Path
    report: dict[str, object] = field(default_factory=dict)


def _migrate(database_url: str) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
    }
    subprocess.run(
        [sys.executable, "-m", "taskhub", "migrate"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _user_token(base_url: str, name: str) -> str:
    with served_client(base_url, timeout=REQUEST_TIMEOUT) as http:
        credentials = {"username": name, "password": DEFAULT_PASSWORD}
        registered = http.post(f"{API}/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        tokens = http.post(f"{API}/auth/login", data=credentials)
        assert tokens.status_code == 200, tokens.text
        token: str = tokens.json()["access_token"]
        return token


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """PostgreSQL, Redis and the served API, all private; the API stays up for every fault."""
    folder = tmp_path_factory.mktemp("faults")
    with private_postgres() as postgres, private_redis() as redis_server:
        database_url = postgres.create_database("wtf_faults")
        _migrate(database_url)
        with start_server(
            database_url,
            folder,
            REDIS_URL=redis_server.url,
            DB_POOL_SIZE="5",
            DB_POOL_TIMEOUT=str(POOL_TIMEOUT),
            REDIS_TIMEOUT="0.5",
            RATE_LIMIT_API="100000/minute",
            RATE_LIMIT_REGISTER="1000/hour",
        ) as server:
            tokens = [_user_token(server.base_url, f"load-{n}") for n in range(CLIENTS)]
            running = Stack(postgres, redis_server, server, tokens, folder)
            yield running
            (folder / "faults.json").write_text(json.dumps(running.report, indent=2))
            print(f"\nfault figures: {folder / 'faults.json'}")


class Load:
    """CLIENTS threads of authenticated reads and keyed creates, and one that polls /ready."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.outcomes: list[Outcome] = []
        # Whatever ended a thread early (a leaking response fails served_client's check).
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._guarded, args=(partial(self._client, token),), daemon=True
            )
            for token in stack.tokens
        ]
        self._threads.append(
            threading.Thread(target=self._guarded, args=(self._ready,), daemon=True)
        )

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _guarded(self, run: Callable[[], None]) -> None:
        try:
            run()
        except BaseException as exc:  # reported by assert_contract, not lost with the thread
            with self._lock:
                self.errors.append(repr(exc))

    def _record(
        self, what: str, call: Callable[[], httpx.Response], *, created: bool = False
    ) -> None:
        started = time.monotonic()
        try:
            response = call()
        except httpx.HTTPError:
            outcome = Outcome(what, started, time.monotonic() - started, 0, None)
        else:
            task_id = response.json()["id"] if created and response.status_code == 201 else None
            outcome = Outcome(
                what,
                started,
                time.monotonic() - started,
                response.status_code,
                response.headers.get("retry-after"),
                task_id,
            )
        with self._lock:
            self.outcomes.append(outcome)

    def _client(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        base_url = self.stack.server.base_url
        with served_client(base_url, timeout=REQUEST_TIMEOUT, headers=headers) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                key = {"Idempotency-Key": uuid.uuid4().hex}
                create = partial(
                    http.post, f"{API}/tasks", json={"title": f"load {n}"}, headers=key
                )
                self._record("create", create, created=True)
                self._record("read", partial(http.get, f"{API}/tasks", params={"limit": 20}))
                self._stop.wait(PACE)

    def _ready(self) -> None:
        with served_client(self.stack.server.base_url, timeout=REQUEST_TIMEOUT) as http:
            while not self._stop.is_set():
                self._record("ready", partial(http.get, "/ready"))
                self._stop.wait(READY_EVERY)

    def api(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.what != "ready"]


def wait_healthy(stack: Stack) -> None:
    """Both dependencies up and /ready 200 before a fault is injected (bounded)."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    with served_client(stack.server.base_url, timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    pytest.fail(f"not ready within {HEALTHY_WITHIN} s:\n{stack.server.output()}")


def run_fault(stack: Stack, fault: Callable[[], None]) -> tuple[Load, float]:
    """Load, then `fault` (which returns once the server is back), then the load until every
    request for CALM_AFTER_RECOVERY s has been a 2xx, or LOAD_AFTER_BACK s have passed.
    Returns the load and the moment the server was back."""
    wait_healthy(stack)
    with Load(stack) as load:
        time.sleep(LOAD_BEFORE_FAULT)
        fault()
        back_at = time.monotonic()
        while time.monotonic() < back_at + LOAD_AFTER_BACK:
            time.sleep(0.2)
            now = time.monotonic()
            if now - back_at < CALM_AFTER_RECOVERY:
                continue
            recent = [o for o in load.api() if o.started >= now - CALM_AFTER_RECOVERY]
            if recent and all(200 <= o.status < 300 for o in recent):
                break
    return load, back_at


def summarize(stack: Stack, name: str, load: Load, back_at: float) -> dict[str, object]:
    outcomes = load.outcomes
    api = load.api()
    after_back = [o for o in api if o.started >= back_at]
    first_2xx = next((o for o in after_back if 200 <= o.status < 300), None)
    failures_after_back = [o for o in after_back if not 200 <= o.status < 300]
    figures: dict[str, object] = {
        "requests": len(api),
        "statuses": {
            str(status): sum(1 for o in api if o.status == status)
            for status in sorted({o.status for o in api})
        },
        "503": sum(1 for o in api if o.status == 503),
        "500": sum(1 for o in api if o.status == 500),
        "no_answer": sum(1 for o in api if o.status == 0),
        "slowest_s": round(max(o.elapsed for o in api), 3),
        "first_2xx_after_back_s": (
            round(first_2xx.started + first_2xx.elapsed - back_at, 3) if first_2xx else None
        ),
        "last_failure_after_back_s": (
            round(max(o.started + o.elapsed for o in failures_after_back) - back_at, 3)
            if failures_after_back
            else 0.0
        ),
        "ready_503": sum(1 for o in outcomes if o.what == "ready" and o.status == 503),
    }
    stack.report[name] = figures
    print(f"\n{name}: {json.dumps(figures)}")
    return figures


def assert_contract(stack: Stack, figures: dict[str, object], load: Load) -> None:
    assert not load.errors, f"load threads ended early: {load.errors}"
    api = load.api()
    bad = [o for o in api if o.status == 0 or (o.status >= 500 and o.status != 503)]
    assert not bad, f"answers other than 2xx/503: {bad[:5]}\n{stack.server.output()[-3000:]}"
    assert all(o.retry_after for o in api if o.status == 503), "a 503 without Retry-After"
    slow = [o for o in load.outcomes if o.elapsed > SLOWEST_ALLOWED]
    assert not slow, f"slower than {SLOWEST_ALLOWED} s: {slow[:5]}"
    first = figures["first_2xx_after_back_s"]
    assert isinstance(first, float), "no 2xx after the server was back"
    assert first <= RECOVERED_WITHIN
    last = figures["last_failure_after_back_s"]
    assert isinstance(last, float)
    assert last <= RECOVERED_WITHIN, "still failing 10 s after the server was back"
    assert_no_acknowledged_write_lost(stack, load)


def assert_no_acknowledged_write_lost(stack: Stack, load: Load) -> None:
    acknowledged = {o.task_id for o in load.outcomes if o.task_id is not None}
    assert acknowledged, "no create succeeded at all"
    stored: set[str] = set()
    with served_client(stack.server.base_url, timeout=REQUEST_TIMEOUT) as http:
        for token in stack.tokens:
            cursor: str | None = None
            for _ in range(10_000):  # pages of 100: far more than any run creates
                params: dict[str, str | int] = {"limit": 100}
                if cursor is not None:
                    params["cursor"] = cursor
                page = http.get(
                    f"{API}/tasks", params=params, headers={"Authorization": f"Bearer {token}"}
                )
                assert page.status_code == 200, page.text
                body = page.json()
                stored.update(item["id"] for item in body["items"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
    lost = acknowledged - stored
    assert not lost, f"{len(lost)} tasks answered 201 are gone"


def test_redis_stopped_then_started(stack: Stack) -> None:
    def fault() -> None:
        stack.redis.kill()
        time.sleep(4.0)
        stack.redis.start()

    load, back_at = run_fault(stack, fault)
    figures = summarize(stack, "redis stopped 4 s", load, back_at)

    assert_contract(stack, figures, load)
    assert figures["503"] == 0, "Redis is not needed to read or create tasks"
    assert figures["ready_503"], "/ready reported Redis as failing meanwhile"


def test_postgres_restarted(stack: Stack) -> None:
    load, back_at = run_fault(stack, stack.postgres.restart)
    figures = summarize(stack, "postgres restart", load, back_at)

    assert_contract(stack, figures, load)


def test_postgres_stopped_for_5_seconds(stack: Stack) -> None:
    def fault() -> None:
        stack.postgres.stop()
        time.sleep(5.0)
        stack.postgres.start()

    load, back_at = run_fault(stack, fault)
    figures = summarize(stack, "postgres stopped 5 s", load, back_at)

    assert_contract(stack, figures, load)
    assert figures["503"], "requests that need the database got 503 while it was down"


def test_postgres_restarted_while_the_api_is_idle_costs_no_request(stack: Stack) -> None:
    # Every connection the pool kept is dead after the restart; none may cost a request a 503.
    wait_healthy(stack)
    with Load(stack):
        time.sleep(1.0)  # the pool grows to the load's concurrency
    stack.postgres.restart()

    headers = {"Authorization": f"Bearer {stack.tokens[0]}"}
    with served_client(stack.server.base_url, timeout=REQUEST_TIMEOUT) as http:
        statuses = [http.get(f"{API}/tasks", headers=headers).status_code for _ in range(10)]
    stack.report["postgres restart, idle API"] = {"statuses_after_back": statuses}
    print(f"\npostgres restart, idle API: statuses after back {statuses}")

    assert statuses == [200] * 10
