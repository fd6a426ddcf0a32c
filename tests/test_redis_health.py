"""The circuit breaker in front of Redis (taskhub.redis_health), on a private redis-server that
the tests stall (CLIENT PAUSE, SIGSTOP) or kill: the first request that notices waits at most
REDIS_TIMEOUT, later requests do not wait for Redis at all, nothing is a 500, the limits go on
in-process, /ready says Redis is down, and shared limits resume within 10 s once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from taskhub.http.health import READY_CACHE_SECONDS
from taskhub.main import create_app
from taskhub.redis_health import RedisBreaker
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, assert_problem, make_user
from tests.private_servers import PrivateRedis

ME = f"{API}/users/me"
REDIS_TIMEOUT = 0.5
# What a request costs besides waiting for Redis, with room for a machine busy with other suites.
MARGIN = 0.5
FOLLOWING = 20
# For all FOLLOWING requests together: if each waited for Redis they would take 10 s.
FOLLOWING_BUDGET = 2.0
RESUMED_WITHIN = 10.0
PAUSE_SECONDS = 4.0


@dataclass
class Served:
    app: FastAPI
    http: httpx.AsyncClient


@pytest.fixture
async def served(
    app: FastAPI, database_url: str, redis_server: PrivateRedis
) -> AsyncIterator[Served]:
    """An app on the private Redis (`app` is requested so the conftest empties the tables)."""
    application = create_app(
        make_settings(
            database_url,
            REDIS_URL=redis_server.url,
            REDIS_TIMEOUT=REDIS_TIMEOUT,
            RATE_LIMIT_API="1000/minute",
        )
    )
    async with client_of(application) as http:
        yield Served(application, http)
    await application.state.rate_limiter.aclose()
    await application.state.database.dispose()


class Stall:
    """Redis stops answering without refusing connections; `end` says when it answers again."""

    def __init__(self, server: PrivateRedis, how: str) -> None:
        self.server = server
        self.how = how
        self._pause_ends = 0.0

    def begin(self) -> None:
        if self.how == "client-pause":
            self.server.pause(PAUSE_SECONDS)
            self._pause_ends = time.monotonic() + PAUSE_SECONDS
        else:
            self.server.freeze()

    async def end(self) -> float:
        if self.how == "client-pause":
            await asyncio.sleep(max(0.0, self._pause_ends - time.monotonic()))
        else:
            self.server.thaw()
        return time.monotonic()


@pytest.fixture(params=["client-pause", "sigstop"])
def stall(request: pytest.FixtureRequest, redis_server: PrivateRedis) -> Stall:
    return Stall(redis_server, request.param)


def shared_hits(server: PrivateRedis, user: ApiUser) -> int:
    """Requests of `user` counted in Redis (the moving window is a list per limit and user)."""
    with server.client() as connection:
        keys = list(connection.scan_iter(match=f"taskhub-limits*api/{user.id}/*"))
        return sum(int(connection.llen(key)) for key in keys)


async def timed_get(http: httpx.AsyncClient, user: ApiUser) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.get(ME, headers=user.headers)
    return response, time.monotonic() - started


async def assert_served_without_waiting_for_redis(served: Served, user: ApiUser) -> float:
    """The first request after Redis went away waits at most REDIS_TIMEOUT; the next FOLLOWING
    do not wait for it at all, and are still limited (in process memory); /ready says so."""
    first, first_wait = await timed_get(served.http, user)
    assert first.status_code == 200, first.text
    assert first_wait <= REDIS_TIMEOUT + MARGIN, f"the first request waited {first_wait:.2f} s"

    started = time.monotonic()
    responses = [await served.http.get(ME, headers=user.headers) for _ in range(FOLLOWING)]
    following = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * FOLLOWING
    assert following < FOLLOWING_BUDGET, f"{FOLLOWING} requests took {following:.2f} s"
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in responses]
    assert remaining == sorted(remaining, reverse=True), "counted in process memory"

    ready = await served.http.get("/ready")
    assert assert_problem(ready, 503)["checks"] == {"database": "ok", "redis": "unavailable"}
    print(
        f"\nredis breaker: first request {first_wait * 1000:.0f} ms, "
        f"{FOLLOWING} following {following * 1000:.0f} ms in all"
    )
    return first_wait


async def seconds_until_shared_again(served: Served, server: PrivateRedis, user: ApiUser) -> float:
    """From now until a request is counted in Redis again (bounded by RESUMED_WITHIN + 5 s)."""
    started = time.monotonic()
    while time.monotonic() - started < RESUMED_WITHIN + 5:
        before = shared_hits(server, user)
        response = await served.http.get(ME, headers=user.headers)
        assert response.status_code == 200, response.text
        if shared_hits(server, user) > before:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return float("inf")


async def test_a_stalled_redis_costs_one_request_one_timeout_then_nothing(
    served: Served, redis_server: PrivateRedis, stall: Stall
) -> None:
    alice = await make_user(served.http, "alice")
    assert (await served.http.get(ME, headers=alice.headers)).status_code == 200
    assert shared_hits(redis_server, alice) >= 1, "counted in Redis while it answers"

    stall.begin()
    try:
        await assert_served_without_waiting_for_redis(served, alice)
    finally:
        await stall.end()

    resumed = await seconds_until_shared_again(served, redis_server, alice)
    print(f"redis breaker ({stall.how}): shared limits again {resumed:.2f} s after Redis was back")
    assert resumed <= RESUMED_WITHIN
    await asyncio.sleep(READY_CACHE_SECONDS)  # the 503 /ready gave during the stall has expired
    ready = await served.http.get("/ready")
    assert ready.status_code == 200, ready.text


async def test_a_stopped_redis_is_skipped_until_it_is_back(
    served: Served, redis_server: PrivateRedis
) -> None:
    alice = await make_user(served.http, "alice")
    assert (await served.http.get(ME, headers=alice.headers)).status_code == 200

    redis_server.kill()
    await assert_served_without_waiting_for_redis(served, alice)
    redis_server.start()  # the same port, empty

    resumed = await seconds_until_shared_again(served, redis_server, alice)
    print(f"redis breaker (killed): shared limits again {resumed:.2f} s after Redis was back")
    assert resumed <= RESUMED_WITHIN


async def test_login_limits_go_on_in_process_while_the_breaker_is_open(
    served: Served, redis_server: PrivateRedis
) -> None:
    alice = await make_user(served.http, "alice")
    redis_server.kill()
    wrong = {"username": "alice", "password": alice.password + "-not"}

    statuses = [(await served.http.post(f"{API}/auth/login", data=wrong)).status_code]
    statuses += [(await served.http.post(f"{API}/auth/login", data=wrong)).status_code]
    assert statuses == [401, 401]
    for _ in range(8):
        await served.http.post(f"{API}/auth/login", data=wrong)

    refused = await served.http.post(
        f"{API}/auth/login", data={"username": "alice", "password": alice.password}
    )
    assert refused.status_code == 429, "RATE_LIMIT_LOGIN (10/minute) counted in process memory"


class TestBreaker:
    async def test_one_failure_opens_it_and_later_calls_fail_at_once(
        self, redis_server: PrivateRedis
    ) -> None:
        breaker = RedisBreaker(redis_server.url, timeout=REDIS_TIMEOUT, probe_interval=60)
        try:
            assert await breaker.answers()
            redis_server.freeze()
            started = time.monotonic()
            assert not await breaker.answers()
            first = time.monotonic() - started
            started = time.monotonic()
            answers = [await breaker.answers() for _ in range(100)]
            following = time.monotonic() - started
        finally:
            redis_server.thaw()
            await breaker.aclose()

        assert breaker.is_open
        assert REDIS_TIMEOUT - 0.05 <= first <= REDIS_TIMEOUT + MARGIN
        assert not any(answers)
        assert following < 0.1

    async def test_the_probe_closes_it_once_redis_answers(self, redis_server: PrivateRedis) -> None:
        breaker = RedisBreaker(redis_server.url, timeout=REDIS_TIMEOUT, probe_interval=0.2)
        try:
            redis_server.kill()
            assert not await breaker.answers()
            assert breaker.is_open
            redis_server.start()
            for _ in range(50):  # up to ~5 s
                if not breaker.is_open:
                    break
                await asyncio.sleep(0.1)
            assert not breaker.is_open
            assert await breaker.answers()
        finally:
            await breaker.aclose()
