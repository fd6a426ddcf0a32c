"""Abuse of login (contract: "Abuse and faults"): no lock-out from one address, refused attempts
count towards nothing, every checked attempt counts towards its address, IPv6 clients are
counted by their /64, sessions are capped, and a password change ends every older session,
logins that race it included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from taskhub.ratelimit import address_key
from tests.helpers import API, DEFAULT_PASSWORD, assert_problem, make_user
from tests.security.test_rate_limits import NEW_PASSWORD, Apps, login

ME = f"{API}/users/me"
ATTACKER, VICTIM = "203.0.113.66", "198.51.100.5"


@pytest.fixture
async def apps(app: FastAPI, database_url: str) -> AsyncIterator[Apps]:
    # `app` is requested so the conftest deletes the rows these tests create.
    async with AsyncExitStack() as stack:
        yield Apps(database_url, stack)


async def test_failed_logins_from_one_address_never_lock_the_account_out_elsewhere(
    apps: Apps,
) -> None:
    application = apps.build(RATE_LIMIT_LOGIN="3/minute", RATE_LIMIT_LOGIN_USERNAME="5/hour")
    attacker = await apps.client(application, ATTACKER)
    await make_user(attacker, "victim")

    statuses = [(await login(attacker, "victim")).status_code for _ in range(40)]

    assert statuses[:3] == [401, 401, 401]
    assert set(statuses[3:]) == {429}
    elsewhere = await apps.client(application, VICTIM)
    assert (await login(elsewhere, "victim", DEFAULT_PASSWORD)).status_code == 200


async def test_the_username_ceiling_still_stops_guesses_spread_over_addresses(
    apps: Apps,
) -> None:
    application = apps.build(RATE_LIMIT_LOGIN="3/minute", RATE_LIMIT_LOGIN_USERNAME="5/hour")
    first = await apps.client(application, "203.0.113.1")
    await make_user(first, "spread")
    second = await apps.client(application, "203.0.113.2")
    for http in (first, first, first, second, second):  # 3 + 2: the ceiling of 5 is reached
        assert (await login(http, "spread")).status_code == 401

    third = await apps.client(application, "203.0.113.3")
    assert_problem(await login(third, "spread", DEFAULT_PASSWORD), 429)


async def test_refused_attempts_count_towards_no_limit(apps: Apps) -> None:
    application = apps.build(RATE_LIMIT_LOGIN="2/minute", RATE_LIMIT_LOGIN_IP="4/minute")
    http = await apps.client(application, ATTACKER)
    await make_user(http, "target")
    await make_user(http, "other")
    assert [(await login(http, "target")).status_code for _ in range(2)] == [401, 401]
    for _ in range(20):
        assert (await login(http, "target")).status_code == 429

    # Two failures so far from this address, of the four it may make: the other account is
    # still reachable, twice.
    assert [(await login(http, "other")).status_code for _ in range(2)] == [401, 401]
    assert (await login(http, "other")).status_code == 429


async def test_every_checked_attempt_counts_towards_the_address_even_a_success(
    apps: Apps,
) -> None:
    application = apps.build(RATE_LIMIT_LOGIN_ATTEMPTS_IP="4/minute")
    http = await apps.client(application, ATTACKER)
    await make_user(http, "busy")  # registers and logs in: the first of the four
    for _ in range(3):
        assert (await login(http, "busy", DEFAULT_PASSWORD)).status_code == 200

    refused = assert_problem(await login(http, "busy", DEFAULT_PASSWORD), 429)
    assert refused["detail"]
    elsewhere = await apps.client(application, VICTIM)
    assert (await login(elsewhere, "busy", DEFAULT_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("192.0.2.1", "192.0.2.1"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(address: str, key: str) -> None:
    assert address_key(address) == key


async def test_addresses_of_one_ipv6_64_share_their_login_limits(apps: Apps) -> None:
    application = apps.build(RATE_LIMIT_LOGIN="3/minute")
    one = await apps.client(application, "2001:db8:0:1::1")
    await make_user(one, "six")
    two = await apps.client(application, "2001:db8:0:1::2")
    three = await apps.client(application, "2001:db8:0:1:ffff::3")
    for http in (one, two, three):
        assert (await login(http, "six")).status_code == 401

    assert_problem(await login(await apps.client(application, "2001:db8:0:1::4"), "six"), 429)
    next_network = await apps.client(application, "2001:db8:0:2::1")
    assert (await login(next_network, "six")).status_code == 401


async def test_a_login_past_the_session_cap_ends_the_oldest_sessions(apps: Apps) -> None:
    application = apps.build(MAX_SESSIONS_PER_USER=3)
    http = await apps.client(application, VICTIM)
    await make_user(http, "many")
    tokens = []
    for _ in range(5):
        response = await login(http, "many", DEFAULT_PASSWORD)
        assert response.status_code == 200
        tokens.append(response.json()["access_token"])

    statuses = [
        (await http.get(ME, headers={"Authorization": f"Bearer {token}"})).status_code
        for token in tokens
    ]
    assert statuses == [401, 401, 200, 200, 200]
    newest = {"Authorization": f"Bearer {tokens[-1]}"}
    sessions = (await http.get(f"{ME}/sessions", headers=newest)).json()["items"]
    assert len(sessions) == 3


async def test_a_password_change_ends_every_login_that_raced_it(apps: Apps) -> None:
    # Room in the hashing queue for every racer: the race is the point, not the queue's bound.
    application = apps.build(RATE_LIMIT_ENABLED=False, HASH_QUEUE_LIMIT=64)
    http = await apps.client(application, VICTIM)
    owner = await make_user(http, "racer")
    new_password = NEW_PASSWORD

    async def change() -> httpx.Response:
        await asyncio.sleep(0.01)
        return await http.post(
            f"{ME}/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
            headers=owner.headers,
        )

    logins = [login(http, "racer", DEFAULT_PASSWORD) for _ in range(30)]
    *answers, changed = await asyncio.gather(*logins, change())

    assert changed.status_code == 204
    survivors = []
    for answer in answers:
        assert answer.status_code in (200, 401)
        if answer.status_code == 200:
            token = answer.json()["access_token"]
            me = await http.get(ME, headers={"Authorization": f"Bearer {token}"})
            survivors += [token] if me.status_code == 200 else []
    assert survivors == []
    assert (await http.get(ME, headers=owner.headers)).status_code == 200
    sessions = (await http.get(f"{ME}/sessions", headers=owner.headers)).json()["items"]
    assert [item["current"] for item in sessions] == [True]
