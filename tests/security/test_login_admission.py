"""Login limits decided and counted in one step, before the hash queue (contract: "Abuse and
faults"): a burst of wrong passwords for one (username, address) gets at most RATE_LIMIT_LOGIN's
amount of password checks, the rest 429; an address or pair over its limit gets 429 even while
the hash queue is full, never 503; and a 503 counts towards nothing. In process memory, in a
shared Redis, and in process memory again while that Redis does not answer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.test_password_hashing import filled_hash_queue
from tests.helpers import DEFAULT_PASSWORD, assert_problem, make_user
from tests.security.test_rate_limits import (  # noqa: F401 - fixtures, used by name
    NEW_PASSWORD,
    PASSWORD,
    REGISTER,
    UNREACHABLE_REDIS_URL,
    Apps,
    limits_key_prefix,
    login,
    on_redis,
    shared_redis,
)

ROUNDS = 12
BURST = 40
PAIR_LIMIT = 10
# Where every round's user is registered: not one of the addresses whose limits are watched.
REGISTRAR = "192.0.2.250"
# A busy machine (two suites at once) can take longer than the default 0.5 s to open 40
# connections to Redis: the breaker would then count in process memory, which is ADR 0012's
# business, not these tests'.
PATIENT = {"REDIS_TIMEOUT": 10.0}


@pytest.fixture
async def apps(app: FastAPI, database_url: str) -> AsyncIterator[Apps]:
    # `app` is requested so the conftest deletes the rows these tests create.
    async with AsyncExitStack() as stack:
        yield Apps(database_url, stack)


@pytest.fixture(params=["memory", "redis", "redis-down"])
def store(request: pytest.FixtureRequest) -> dict[str, object]:
    """Where the limits count: process memory (no Redis), the shared Redis, or process memory
    behind the breaker of a Redis that does not answer."""
    if request.param == "redis":
        on_redis_settings: dict[str, object] = request.getfixturevalue("on_redis")
        return {**on_redis_settings, **PATIENT}
    if request.param == "redis-down":
        return {"REDIS_URL": UNREACHABLE_REDIS_URL}
    return {}


def _statuses(application: FastAPI, responses: list[httpx.Response]) -> Counter[int]:
    """How many of each status; first, that the shared Redis, where it was meant to answer, was
    not left for process memory."""
    breaker = application.state.rate_limiter.redis
    if breaker is not None and breaker.timeout == PATIENT["REDIS_TIMEOUT"]:
        assert not breaker.is_open, "the shared Redis did not answer in time"
    return Counter(response.status_code for response in responses)


async def test_a_burst_of_wrong_passwords_gets_at_most_the_pair_limit_of_checks(
    apps: Apps,
    on_redis: dict[str, object],  # noqa: F811
) -> None:
    # In the shared Redis, where every step awaits a round trip (process memory is covered by
    # the bursts below). Room in the hash queue for the whole burst: only the limits may refuse.
    application = apps.build(
        **on_redis,
        **PATIENT,
        RATE_LIMIT_LOGIN=f"{PAIR_LIMIT}/minute",
        RATE_LIMIT_REGISTER="1000/hour",
        HASH_QUEUE_LIMIT=BURST * 2,
    )
    registrar = await apps.client(application, REGISTRAR)
    for round_ in range(ROUNDS):
        username = f"burst-{round_}"
        await make_user(registrar, username)
        attacker = await apps.client(application, f"203.0.113.{round_ + 1}")

        burst = await asyncio.gather(*(login(attacker, username) for _ in range(BURST)))

        assert _statuses(application, burst) == {401: PAIR_LIMIT, 429: BURST - PAIR_LIMIT}, round_
        for refused in (response for response in burst if response.status_code == 429):
            assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_a_pair_over_its_limit_gets_429_not_503_while_the_hash_queue_is_full(
    apps: Apps, store: dict[str, object]
) -> None:
    application = apps.build(**store, RATE_LIMIT_LOGIN="3/minute", HASH_QUEUE_LIMIT=1)
    registrar = await apps.client(application, REGISTRAR)
    for round_ in range(ROUNDS):
        username = f"queued-{round_}"
        await make_user(registrar, username)
        attacker = await apps.client(application, f"203.0.113.{round_ + 1}")
        # While the queue is full of others' hashes, an attempt within the limits is 503 and
        # counts towards nothing: the three tries of the pair are all still there after it.
        with filled_hash_queue():
            for _ in range(4):
                assert_problem(await login(attacker, username), 503)
        assert [(await login(attacker, username)).status_code for _ in range(3)] == [401] * 3

        with filled_hash_queue():
            burst = await asyncio.gather(
                *(login(attacker, username) for _ in range(BURST - 1)),
                login(attacker, username, DEFAULT_PASSWORD),
            )

        assert _statuses(application, burst) == {429: BURST}, round_


async def test_an_address_over_its_limit_gets_429_not_503_while_the_hash_queue_is_full(
    apps: Apps, store: dict[str, object]
) -> None:
    application = apps.build(**store, RATE_LIMIT_LOGIN_ATTEMPTS_IP="3/minute", HASH_QUEUE_LIMIT=1)
    for round_ in range(ROUNDS):
        attacker = await apps.client(application, f"203.0.113.{round_ + 1}")
        for name in ("one", "two", "three"):
            assert (await login(attacker, f"{name}-{round_}")).status_code == 401

        with filled_hash_queue():
            burst = await asyncio.gather(
                *(login(attacker, f"other-{round_}-{n}") for n in range(BURST))
            )

        assert _statuses(application, burst) == {429: BURST}, round_


async def test_registration_over_its_limit_gets_429_not_503_and_a_503_counts_nothing(
    apps: Apps, store: dict[str, object]
) -> None:
    application = apps.build(**store, RATE_LIMIT_REGISTER="1/hour", HASH_QUEUE_LIMIT=1)
    http = await apps.client(application)
    with filled_hash_queue():
        refused = await http.post(REGISTER, json={"username": "a", "password": DEFAULT_PASSWORD})
        assert_problem(refused, 422)  # the rules come first; then the limit; then the queue
        busy = await http.post(REGISTER, json={"username": "first", "password": DEFAULT_PASSWORD})
        assert_problem(busy, 503)
    created = await http.post(REGISTER, json={"username": "first", "password": DEFAULT_PASSWORD})
    assert created.status_code == 201, created.text

    with filled_hash_queue():
        burst = await asyncio.gather(
            *(
                http.post(REGISTER, json={"username": f"more-{n}", "password": DEFAULT_PASSWORD})
                for n in range(10)
            )
        )

    assert _statuses(application, burst) == {429: 10}


async def test_a_password_change_over_the_login_limit_gets_429_not_503_while_the_queue_is_full(
    apps: Apps, store: dict[str, object]
) -> None:
    application = apps.build(**store, RATE_LIMIT_LOGIN="2/minute", HASH_QUEUE_LIMIT=1)
    http = await apps.client(application)
    owner = await make_user(http, "changer")
    for _ in range(2):
        assert (await login(http, "changer")).status_code == 401

    with filled_hash_queue():
        change = await http.post(
            PASSWORD,
            json={"current_password": owner.password, "new_password": NEW_PASSWORD},
            headers=owner.headers,
        )

    assert_problem(change, 429)


async def test_a_malformed_login_while_the_hash_queue_is_full_is_still_refused_for_its_body(
    apps: Apps,
) -> None:
    """The refusal taken before routing reads the body the route's one way; a body it cannot
    read goes on to the route, whose 400 or 422 comes before the queue's 503."""
    application = apps.build(HASH_QUEUE_LIMIT=1)
    client = await apps.client(application, "203.0.113.200")
    with filled_hash_queue():
        not_json = await client.post(
            "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
        )
        no_password = await client.post("/api/v1/auth/login", json={"username": "someone"})
        too_many_fields = await client.post(
            "/api/v1/auth/login", data={f"field{n}": "x" for n in range(40)}
        )
        well_formed = await login(client, "someone")

    assert_problem(not_json, 400)
    assert_problem(no_password, 422)
    assert 400 <= too_many_fields.status_code < 500, too_many_fields.text
    assert_problem(well_formed, 503)
