"""Rate limits (moving windows): failed logins per (username, address), per address and per
username; registrations per address; requests per user; shared through Redis when REDIS_URL is
set, per process otherwise; still serving, and still limiting logins, when Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, DEFAULT_PASSWORD, ApiUser, assert_problem, make_user

LOGIN = f"{API}/auth/login"
REGISTER = f"{API}/auth/register"
ME = f"{API}/users/me"
PASSWORD = f"{ME}/password"
WRONG = "not-the-password-1"
NEW_PASSWORD = "quartz-lantern-meadow-7"
ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"
MINUTE, HOUR = 60, 3600
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

# The machine's Redis (CI starts one), DB 14, under a key prefix of each test's own (deleted after
# it): two runs at once on one machine never count into each other's windows, and nothing else
# in that database is touched. If Redis is down these tests fail; they never skip.
REDIS_URL = "redis://127.0.0.1:6379/14"
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


class Apps:
    """Apps with their own settings over the shared test database, closed after the test."""

    def __init__(self, database_url: str, stack: AsyncExitStack) -> None:
        self.database_url = database_url
        self.stack = stack

    def build(self, **overrides: object) -> FastAPI:
        application = create_app(make_settings(self.database_url, **overrides))
        self.stack.push_async_callback(application.state.database.dispose)
        self.stack.push_async_callback(application.state.rate_limiter.aclose)
        return application

    async def client(self, application: FastAPI, ip: str = ADDRESS) -> httpx.AsyncClient:
        """A client whose socket peer is `ip`."""
        return await self.stack.enter_async_context(client_of(application, peer=(ip, 1234)))


@pytest.fixture
async def apps(app: FastAPI, database_url: str) -> AsyncIterator[Apps]:
    # `app` is requested so the conftest deletes the rows these tests create.
    async with AsyncExitStack() as stack:
        yield Apps(database_url, stack)


@pytest.fixture
def limits_key_prefix() -> str:
    return f"taskhub-test-limits-{uuid.uuid4().hex}"


@pytest.fixture
def shared_redis(limits_key_prefix: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(REDIS_URL) as connection:
        connection.ping()  # no Redis: the test errors here, it is never skipped
        yield connection
        keys = list(connection.scan_iter(match=f"{limits_key_prefix}*", count=1000))
        if keys:
            connection.delete(*keys)


@pytest.fixture
def on_redis(shared_redis: redis.Redis, limits_key_prefix: str) -> dict[str, object]:
    """The settings of an app that keeps its limits in the shared Redis, under this test's prefix."""
    return {"REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": limits_key_prefix}


async def login(
    http: httpx.AsyncClient, username: str, password: str = WRONG, **headers: str
) -> httpx.Response:
    return await http.post(
        LOGIN, data={"username": username, "password": password}, headers=headers
    )


async def fail_logins(http: httpx.AsyncClient, username: str, times: int) -> None:
    for attempt in range(times):
        response = await login(http, username)
        assert response.status_code == 401, f"attempt {attempt + 1}: {response.text}"


def retry_after(response: httpx.Response, window: int) -> int:
    """Retry-After: a positive whole number of seconds, no longer than the limit's window."""
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= window
    return seconds


def assert_too_many(response: httpx.Response, *, limit: int, window: int) -> dict[str, Any]:
    body = assert_problem(response, 429)
    retry_after(response, window)
    for name in RATE_LIMIT_HEADERS:
        assert response.headers[name] == response.headers[f"X-{name}"]
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(response.headers["RateLimit-Reset"]) <= window
    return body


class TestFailedLoginsPerUsernameAndAddress:
    async def test_default_limit_gives_401_ten_times_then_429(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await fail_logins(client, "alice", 10)

        response = await login(client, "alice")

        body = assert_too_many(response, limit=10, window=MINUTE)
        assert "password" not in body.get("detail", "").lower()

    async def test_while_limited_the_right_password_also_gets_429(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        await fail_logins(client, "alice", 10)

        response = await login(client, "alice", alice.password)

        assert_too_many(response, limit=10, window=MINUTE)
        assert "access_token" not in response.text

    async def test_unknown_usernames_are_limited_like_wrong_passwords(
        self, client: httpx.AsyncClient
    ) -> None:
        await fail_logins(client, "nobody-here", 10)

        assert_too_many(await login(client, "nobody-here"), limit=10, window=MINUTE)

    async def test_changing_the_case_of_the_username_does_not_reset_the_count(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        for name in ("alice", "Alice", "ALICE", "aLiCe", "alicE") * 2:
            assert (await login(client, name)).status_code == 401

        assert (await login(client, "ALIce", alice.password)).status_code == 429

    async def test_json_and_form_logins_count_towards_one_limit(
        self, apps: Apps, database_url: str
    ) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        await make_user(http, "alice")

        assert (await login(http, "alice")).status_code == 401
        as_json = await http.post(LOGIN, json={"username": "alice", "password": WRONG})
        assert as_json.status_code == 401

        assert_too_many(await login(http, "alice"), limit=2, window=MINUTE)

    async def test_successful_logins_do_not_count(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        alice = await make_user(http, "alice")
        for _ in range(4):
            assert (await login(http, "alice", alice.password)).status_code == 200

        await fail_logins(http, "alice", 2)
        assert (await login(http, "alice")).status_code == 429

    async def test_malformed_logins_rejected_with_422_or_400_do_not_count(self, apps: Apps) -> None:
        http = await apps.client(
            apps.build(RATE_LIMIT_LOGIN="2/minute", RATE_LIMIT_LOGIN_IP="2/minute")
        )
        await make_user(http, "alice")
        malformed = [
            {"data": {"username": "alice"}},
            {"data": {"username": "alice", "password": ""}},
            {"data": {"username": "", "password": WRONG}},
            {"json": {"username": "alice"}},
            {"json": {"username": "alice", "password": WRONG, "extra": 1}},
            {"json": ["alice", WRONG]},
            {"json": {"username": "alice", "password": 12345}},
        ]
        for _ in range(2):
            for request in malformed:
                response = await http.post(LOGIN, **request)  # type: ignore[arg-type]
                assert_problem(response, 422)
            broken = await http.post(
                LOGIN,
                content=b'{"username": "alice",',
                headers={"Content-Type": "application/json"},
            )
            assert_problem(broken, 400)

        await fail_logins(http, "alice", 2)
        assert (await login(http, "alice")).status_code == 429

    async def test_a_limited_pair_does_not_lock_the_user_out_from_another_address(
        self, apps: Apps
    ) -> None:
        application = apps.build(RATE_LIMIT_LOGIN="3/minute")
        attacker = await apps.client(application, ADDRESS)
        owner = await apps.client(application, OTHER_ADDRESS)
        alice = await make_user(owner, "alice")
        await fail_logins(attacker, "alice", 3)
        assert (await login(attacker, "alice", alice.password)).status_code == 429

        assert (await login(owner, "alice", alice.password)).status_code == 200
        assert (await login(owner, "alice")).status_code == 401

    async def test_a_limited_pair_leaves_other_usernames_from_that_address_alone(
        self, apps: Apps
    ) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="3/minute"))
        bob = await make_user(http, "bob")
        await fail_logins(http, "alice", 3)
        assert (await login(http, "alice")).status_code == 429

        assert (await login(http, "bob", bob.password)).status_code == 200

    async def test_a_burst_of_concurrent_guesses_gets_no_more_tries_than_the_limit(
        self, apps: Apps
    ) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="3/minute"))
        await make_user(http, "alice")

        burst = await asyncio.gather(*(login(http, "alice", f"guess-{n}-xyz") for n in range(20)))

        statuses = Counter(response.status_code for response in burst)
        assert statuses[401] <= 3, statuses
        assert statuses[429] >= 17, statuses


class TestFailedLoginsPerAddress:
    async def test_failures_for_many_usernames_from_one_address_hit_the_address_limit(
        self, apps: Apps
    ) -> None:
        application = apps.build(RATE_LIMIT_LOGIN_IP="3/minute")
        http = await apps.client(application, ADDRESS)
        for name in ("user-a", "user-b", "user-c"):
            assert (await login(http, name)).status_code == 401

        assert_too_many(await login(http, "user-d"), limit=3, window=MINUTE)

    async def test_the_address_limit_blocks_the_right_password_from_that_address_only(
        self, apps: Apps
    ) -> None:
        application = apps.build(RATE_LIMIT_LOGIN_IP="3/minute")
        http = await apps.client(application, ADDRESS)
        elsewhere = await apps.client(application, OTHER_ADDRESS)
        alice = await make_user(elsewhere, "alice")
        for name in ("user-a", "user-b", "user-c"):
            assert (await login(http, name)).status_code == 401

        assert (await login(http, "alice", alice.password)).status_code == 429
        assert (await login(elsewhere, "alice", alice.password)).status_code == 200


class TestFailedLoginsPerUsername:
    async def test_failures_from_many_addresses_hit_the_username_ceiling(self, apps: Apps) -> None:
        application = apps.build(RATE_LIMIT_LOGIN_USERNAME="3/hour")
        for number in range(3):
            http = await apps.client(application, f"192.0.2.{number + 1}")
            assert (await login(http, "alice")).status_code == 401

        fresh = await apps.client(application, "192.0.2.200")
        assert_too_many(await login(fresh, "alice"), limit=3, window=HOUR)
        assert (await login(fresh, "bob")).status_code == 401

    async def test_retry_after_is_the_longest_wait_of_every_limit_used_up(self, apps: Apps) -> None:
        http = await apps.client(
            apps.build(RATE_LIMIT_LOGIN="2/minute", RATE_LIMIT_LOGIN_USERNAME="2/hour")
        )
        await fail_logins(http, "alice", 2)

        response = await login(http, "alice")

        # Both limits are used up; after a minute the per-username one still refuses.
        assert response.status_code == 429
        assert retry_after(response, HOUR) > MINUTE


class TestPasswordChangeCountsAsLogin:
    async def test_wrong_current_password_counts_as_a_failed_login(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="3/minute"))
        alice = await make_user(http, "alice")
        for _ in range(3):
            response = await http.post(
                PASSWORD,
                json={"current_password": WRONG, "new_password": NEW_PASSWORD},
                headers=alice.headers,
            )
            assert_problem(response, 401)

        assert (await login(http, "alice", alice.password)).status_code == 429

    async def test_password_change_is_refused_while_logins_are_limited(self, apps: Apps) -> None:
        application = apps.build(RATE_LIMIT_LOGIN="3/minute")
        http = await apps.client(application)
        alice = await make_user(http, "alice")
        await fail_logins(http, "alice", 3)

        response = await http.post(
            PASSWORD,
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert_problem(response, 429)
        retry_after(response, MINUTE)
        elsewhere = await apps.client(application, OTHER_ADDRESS)
        assert (await login(elsewhere, "alice", alice.password)).status_code == 200

    async def test_a_429_on_password_change_states_one_limit_per_header(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="3/minute"))
        alice = await make_user(http, "alice")
        await fail_logins(http, "alice", 3)

        response = await http.post(
            PASSWORD,
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )

        assert response.status_code == 429
        for name in RATE_LIMIT_HEADERS:
            assert len(response.headers.get_list(name)) == 1, (name, response.headers.raw)

    async def test_malformed_password_changes_do_not_count(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        alice = await make_user(http, "alice")
        for body in ({"current_password": WRONG}, {"new_password": NEW_PASSWORD}, {}) * 2:
            assert_problem(await http.post(PASSWORD, json=body, headers=alice.headers), 422)

        assert (await login(http, "alice", alice.password)).status_code == 200

    async def test_right_current_password_with_a_rejected_new_one_does_not_count(
        self, apps: Apps
    ) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        alice = await make_user(http, "alice")
        for _ in range(3):
            response = await http.post(
                PASSWORD,
                json={"current_password": alice.password, "new_password": "short"},
                headers=alice.headers,
            )
            assert_problem(response, 422)

        assert (await login(http, "alice", alice.password)).status_code == 200


class TestRegistrationsPerAddress:
    async def test_registrations_over_the_limit_get_429_with_retry_after(self, apps: Apps) -> None:
        application = apps.build(RATE_LIMIT_REGISTER="2/hour")
        http = await apps.client(application)
        for name in ("first", "second"):
            response = await http.post(
                REGISTER, json={"username": name, "password": DEFAULT_PASSWORD}
            )
            assert response.status_code == 201, response.text

        response = await http.post(
            REGISTER, json={"username": "third", "password": DEFAULT_PASSWORD}
        )

        assert_too_many(response, limit=2, window=HOUR)
        elsewhere = await apps.client(application, OTHER_ADDRESS)
        response = await elsewhere.post(
            REGISTER, json={"username": "third", "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 201, response.text

    async def test_malformed_registrations_do_not_count(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_REGISTER="2/hour"))
        malformed: list[Any] = [
            {"username": "x", "password": DEFAULT_PASSWORD},
            {"username": "has space", "password": DEFAULT_PASSWORD},
            {"username": "carol"},
            {"username": "carol", "password": DEFAULT_PASSWORD, "admin": True},
            ["carol", DEFAULT_PASSWORD],
        ]
        for body in malformed:
            assert_problem(await http.post(REGISTER, json=body), 422)

        for name in ("first", "second"):
            response = await http.post(
                REGISTER, json={"username": name, "password": DEFAULT_PASSWORD}
            )
            assert response.status_code == 201, response.text

    async def test_registrations_refused_by_the_password_rules_do_not_count(
        self, apps: Apps
    ) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_REGISTER="2/hour"))
        for password in ("short", "password", "x" * 80):
            assert_problem(
                await http.post(REGISTER, json={"username": "carol", "password": password}), 422
            )

        for name in ("first", "second"):
            response = await http.post(
                REGISTER, json={"username": name, "password": DEFAULT_PASSWORD}
            )
            assert response.status_code == 201, response.text


class TestRequestsPerUser:
    async def test_authenticated_responses_say_what_is_left(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_API="5/minute"))
        alice = await make_user(http, "alice")

        first = await http.get(ME, headers=alice.headers)
        second = await http.get(ME, headers=alice.headers)

        assert first.status_code == second.status_code == 200
        for response, left in ((first, "4"), (second, "3")):
            for name in RATE_LIMIT_HEADERS:
                assert response.headers[name] == response.headers[f"X-{name}"]
            assert response.headers["RateLimit-Limit"] == "5"
            assert response.headers["RateLimit-Remaining"] == left
            assert 0 <= int(response.headers["RateLimit-Reset"]) <= MINUTE

    async def test_requests_over_the_user_limit_get_429(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_API="3/minute"))
        alice = await make_user(http, "alice")
        for _ in range(3):
            assert (await http.get(ME, headers=alice.headers)).status_code == 200

        response = await http.get(f"{API}/tasks", headers=alice.headers)

        assert_too_many(response, limit=3, window=MINUTE)

    async def test_the_user_limit_is_per_user_not_per_address(self, apps: Apps) -> None:
        http = await apps.client(apps.build(RATE_LIMIT_API="2/minute"))
        alice = await make_user(http, "alice")
        bob = await make_user(http, "bob")
        for _ in range(2):
            assert (await http.get(ME, headers=alice.headers)).status_code == 200
        assert (await http.get(ME, headers=alice.headers)).status_code == 429

        response = await http.get(ME, headers=bob.headers)

        assert response.status_code == 200
        assert response.headers["RateLimit-Remaining"] == "1"

    async def test_anonymous_responses_carry_no_rate_limit_headers(
        self, client: httpx.AsyncClient
    ) -> None:
        for response in (await client.get("/health"), await client.get(ME)):
            for name in RATE_LIMIT_HEADERS:
                assert name not in response.headers
                assert f"X-{name}" not in response.headers


class TestSwitchedOff:
    async def test_rate_limit_enabled_false_switches_every_limit_off(self, apps: Apps) -> None:
        http = await apps.client(
            apps.build(
                RATE_LIMIT_ENABLED=False,
                RATE_LIMIT_LOGIN="1/minute",
                RATE_LIMIT_LOGIN_IP="1/minute",
                RATE_LIMIT_LOGIN_USERNAME="1/hour",
                RATE_LIMIT_REGISTER="1/hour",
                RATE_LIMIT_API="1/minute",
            )
        )
        alice = await make_user(http, "alice")
        bob = await make_user(http, "bob")

        for name in ("alice", "alice", "bob", "nobody"):
            assert (await login(http, name)).status_code == 401
        assert (await login(http, "alice", alice.password)).status_code == 200
        for _ in range(3):
            response = await http.get(ME, headers=bob.headers)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
            assert "Retry-After" not in response.headers


class TestPerProcessWithoutRedis:
    async def test_without_redis_each_instance_counts_on_its_own(self, apps: Apps) -> None:
        first = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        second = await apps.client(apps.build(RATE_LIMIT_LOGIN="2/minute"))
        await fail_logins(first, "alice", 2)
        assert (await login(first, "alice")).status_code == 429

        assert (await login(second, "alice")).status_code == 401


class TestSharedThroughRedis:
    async def test_two_instances_with_one_redis_add_up_failed_logins(
        self,
        apps: Apps,
        on_redis: dict[str, object],
        shared_redis: redis.Redis,
        limits_key_prefix: str,
    ) -> None:
        settings = {**on_redis, "RATE_LIMIT_LOGIN": "4/minute"}
        first = await apps.client(apps.build(**settings))
        second = await apps.client(apps.build(**settings))
        alice = await make_user(first, "alice")

        await fail_logins(first, "alice", 2)
        await fail_logins(second, "alice", 2)

        assert_too_many(await login(first, "alice"), limit=4, window=MINUTE)
        assert_too_many(await login(second, "alice", alice.password), limit=4, window=MINUTE)
        assert shared_redis.keys(f"{limits_key_prefix}*"), "the counts live in Redis"

    async def test_two_instances_with_one_redis_share_the_address_and_username_limits(
        self, apps: Apps, on_redis: dict[str, object]
    ) -> None:
        settings = {
            **on_redis,
            "RATE_LIMIT_LOGIN_IP": "2/minute",
            "RATE_LIMIT_LOGIN_USERNAME": "2/hour",
        }
        first, second = apps.build(**settings), apps.build(**settings)
        assert (await login(await apps.client(first, ADDRESS), "user-a")).status_code == 401
        assert (await login(await apps.client(second, ADDRESS), "user-b")).status_code == 401
        assert (await login(await apps.client(first, ADDRESS), "user-c")).status_code == 429

        assert (await login(await apps.client(first, "192.0.2.1"), "carol")).status_code == 401
        assert (await login(await apps.client(second, "192.0.2.2"), "carol")).status_code == 401
        assert (await login(await apps.client(second, "192.0.2.3"), "carol")).status_code == 429

    async def test_two_instances_with_one_redis_share_the_user_limit(
        self, apps: Apps, on_redis: dict[str, object]
    ) -> None:
        settings = {
            **on_redis,
            "RATE_LIMIT_API": "3/minute",
            "JWT_SECRET": "shared-" + "k" * 20 + "0123456789abcdef",
        }
        first = await apps.client(apps.build(**settings))
        second = await apps.client(apps.build(**settings))
        alice = await make_user(first, "alice")
        assert (await first.get(ME, headers=alice.headers)).status_code == 200
        assert (await second.get(ME, headers=alice.headers)).status_code == 200
        third = await first.get(ME, headers=alice.headers)
        assert third.headers["RateLimit-Remaining"] == "0"

        assert_too_many(await second.get(ME, headers=alice.headers), limit=3, window=MINUTE)

    async def test_a_request_is_decided_counted_and_measured_in_one_round_trip(
        self, apps: Apps, on_redis: dict[str, object]
    ) -> None:
        application = apps.build(**on_redis, RATE_LIMIT_API="5/minute")
        http = await apps.client(application)
        alice = await make_user(http, "alice")
        assert (await http.get(ME, headers=alice.headers)).status_code == 200  # scripts loaded
        client = application.state.rate_limiter.redis.client
        sent: list[object] = []
        execute = client.execute_command

        async def counted(*args: object, **options: object) -> object:
            sent.append(args[0])
            return await execute(*args, **options)

        client.execute_command = counted
        response = await http.get(ME, headers=alice.headers)

        assert response.status_code == 200
        assert response.headers["RateLimit-Remaining"] == "3"
        assert sent == ["EVALSHA"], "one command: decided, counted and measured at once"

    async def test_two_instances_with_one_redis_share_the_registration_limit(
        self, apps: Apps, on_redis: dict[str, object]
    ) -> None:
        settings = {**on_redis, "RATE_LIMIT_REGISTER": "1/hour"}
        first = await apps.client(apps.build(**settings))
        second = await apps.client(apps.build(**settings))
        created = await first.post(REGISTER, json={"username": "one", "password": DEFAULT_PASSWORD})
        assert created.status_code == 201, created.text

        response = await second.post(
            REGISTER, json={"username": "two", "password": DEFAULT_PASSWORD}
        )

        assert_too_many(response, limit=1, window=HOUR)


class TestRedisUnreachable:
    async def test_the_api_keeps_serving_with_the_user_limit_in_process_and_logs_it_once(
        self, apps: Apps, caplog: pytest.LogCaptureFixture
    ) -> None:
        application = apps.build(REDIS_URL=UNREACHABLE_REDIS_URL, RATE_LIMIT_API="2/minute")
        logging.getLogger().addHandler(caplog.handler)  # create_app replaced the root handlers
        http = await apps.client(application)
        alice = await make_user(http, "alice")

        for remaining in ("1", "0"):
            response = await http.get(ME, headers=alice.headers)
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Remaining"] == remaining
        assert_too_many(await http.get(ME, headers=alice.headers), limit=2, window=MINUTE)

        warnings = [r for r in caplog.records if r.name == "taskhub.redis_health"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert "127.0.0.1:1" not in caplog.text

    async def test_login_limits_still_apply_in_process(self, apps: Apps) -> None:
        application = apps.build(REDIS_URL=UNREACHABLE_REDIS_URL, RATE_LIMIT_LOGIN="2/minute")
        http = await apps.client(application)
        alice = await make_user(http, "alice")
        await fail_logins(http, "alice", 2)

        assert_too_many(await login(http, "alice", alice.password), limit=2, window=MINUTE)
        elsewhere = await apps.client(application, OTHER_ADDRESS)
        assert (await login(elsewhere, "alice", alice.password)).status_code == 200

    async def test_password_change_still_counts_in_process(self, apps: Apps) -> None:
        http = await apps.client(
            apps.build(REDIS_URL=UNREACHABLE_REDIS_URL, RATE_LIMIT_LOGIN="1/minute")
        )
        alice = await make_user(http, "alice")
        wrong = {"current_password": WRONG, "new_password": NEW_PASSWORD}
        assert (await http.post(PASSWORD, json=wrong, headers=alice.headers)).status_code == 401

        assert (await login(http, "alice", alice.password)).status_code == 429

    async def test_registration_limit_still_applies_in_process(self, apps: Apps) -> None:
        http = await apps.client(
            apps.build(REDIS_URL=UNREACHABLE_REDIS_URL, RATE_LIMIT_REGISTER="1/hour")
        )
        created = await http.post(REGISTER, json={"username": "one", "password": DEFAULT_PASSWORD})
        assert created.status_code == 201, created.text

        response = await http.post(REGISTER, json={"username": "two", "password": DEFAULT_PASSWORD})

        assert_too_many(response, limit=1, window=HOUR)
