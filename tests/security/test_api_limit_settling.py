"""The per-user API limit counted in process and settled with Redis in batches (ADR 0008, issue
20): far below the limit a request makes no round trip; near it, or for a limit under 100, it is
decided in Redis as before; every process's unsettled hits of every user reach the same lists in
one round trip; and across N instances sharing one Redis, no window admits more than
amount + N x B (B = amount // 100). Several RateLimiter instances against one private Redis, a
clock of the test's own (no test waits for a window or an interval), settle() called directly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from fastapi import FastAPI

from taskhub import ratelimit
from taskhub.ratelimit import RateLimiter, TooManyRequests
from tests.conftest import make_settings
from tests.helpers import make_user
from tests.private_servers import PrivateRedis
from tests.security.test_rate_limits import (  # noqa: F401 - fixtures, used by name
    ME,
    Apps,
    limits_key_prefix,
    on_redis,
    shared_redis,
)

T0 = 1_800_000_000.0
MINUTE = 60
KEY_PREFIX = "taskhub-limits"


class Clock:
    """The limiters' time: moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Limiters:
    """RateLimiters of the test's own on its private Redis, closed after it."""

    def __init__(
        self, database_url: str, server: PrivateRedis, clock: Clock, stack: AsyncExitStack
    ) -> None:
        self.database_url = database_url
        self.server = server
        self.clock = clock
        self.stack = stack

    def build(self, api: str = "1000/minute", **overrides: object) -> RateLimiter:
        settings = make_settings(
            self.database_url, REDIS_URL=self.server.url, RATE_LIMIT_API=api, **overrides
        )
        limiter = RateLimiter(settings, clock=self.clock)
        self.stack.push_async_callback(limiter.aclose)
        return limiter

    def counted(self, user: str, amount: int = 1000) -> int:
        """The stamps in the user's shared window (the list every instance counts into)."""
        with self.server.client() as connection:
            return int(connection.llen(f"{KEY_PREFIX}:api/{user}/{amount}/{MINUTE}"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def limiters(
    database_url: str, redis_server: PrivateRedis, clock: Clock
) -> AsyncIterator[Limiters]:
    async with AsyncExitStack() as stack:
        yield Limiters(database_url, redis_server, clock, stack)


class Commands:
    """The commands a limiter sends to Redis from now on."""

    def __init__(self, limiter: RateLimiter) -> None:
        assert limiter.redis is not None
        self.sent: list[object] = []
        client = limiter.redis.client
        execute = client.execute_command

        async def counted(*args: object, **options: object) -> object:
            self.sent.append(args[0])
            return await execute(*args, **options)

        client.execute_command = counted  # type: ignore[method-assign]

    def take(self) -> list[object]:
        sent, self.sent = self.sent, []
        return sent


async def admitted(limiter: RateLimiter, user: str) -> bool:
    try:
        await limiter.hit_api(user_id=user)
    except TooManyRequests:
        return False
    return True


class TestRoundTrips:
    async def test_far_below_the_limit_a_request_makes_no_round_trip_and_near_it_one(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")  # B = 10 unsettled, local below 900
        await limiter.hit_api(user_id="alice")  # no reading yet: decided in Redis (scripts loaded)
        commands = Commands(limiter)

        for _ in range(10):
            await limiter.hit_api(user_id="alice")
        assert commands.take() == [], "far below the limit: no round trip"
        assert limiters.counted("alice") == 1

        await limiter.hit_api(user_id="alice")  # 10 unsettled already: decided in Redis
        assert commands.take() == ["EVALSHA"]
        assert limiters.counted("alice") == 12, "with the 10 this process had not settled"

    async def test_near_the_limit_every_request_is_decided_in_redis(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        for _ in range(900):
            await limiter.hit_api(user_id="alice")
        await limiter.settle()
        commands = Commands(limiter)

        states = [await limiter.hit_api(user_id="alice") for _ in range(100)]

        assert commands.take() == ["EVALSHA"] * 100
        assert [state.remaining for state in states if state is not None] == list(range(99, -1, -1))
        with pytest.raises(TooManyRequests):
            await limiter.hit_api(user_id="alice")
        assert limiters.counted("alice") == 1000

    async def test_a_limit_under_100_is_always_decided_in_redis(self, limiters: Limiters) -> None:
        limiter = limiters.build("99/minute")  # B = 0
        await limiter.hit_api(user_id="alice")
        commands = Commands(limiter)

        for _ in range(20):
            await limiter.hit_api(user_id="alice")

        assert commands.take() == ["EVALSHA"] * 20
        assert limiters.counted("alice", 99) == 21

    async def test_one_settle_counts_every_users_hits_in_one_round_trip(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        users = ["alice", "bob", "carol"]
        for user in users:
            await limiter.hit_api(user_id=user)
        await limiter.hit_api(user_id="alice")
        await limiter.settle()  # the scripts are loaded
        commands = Commands(limiter)
        for times, user in enumerate(users, start=3):
            for _ in range(times):
                await limiter.hit_api(user_id=user)
        assert commands.take() == []

        await limiter.settle()

        assert commands.take() == ["EVALSHA"]
        assert [limiters.counted(user) for user in users] == [5, 5, 6]
        await limiter.settle()
        assert commands.take() == [], "nothing unsettled: no round trip"

    async def test_settling_pushes_stamps_into_the_newest_first_list(
        self, limiters: Limiters, clock: Clock
    ) -> None:
        limiter = limiters.build("1000/minute")
        other = limiters.build("1000/minute")
        await limiter.hit_api(user_id="alice")
        clock.now += 1
        await limiter.hit_api(user_id="alice")  # local, unsettled, at T0 + 1
        clock.now += 1
        await other.hit_api(user_id="alice")  # decided in Redis at T0 + 2

        await limiter.settle()

        with limiters.server.client() as connection:
            stamps = [float(s) for s in connection.lrange(f"{KEY_PREFIX}:api/alice/1000/60", 0, -1)]
        # The hit at T0 + 1 arrived after one at T0 + 2: counted as that one, so the list stays
        # newest first and the window's oldest stamp is still its last.
        assert stamps == [T0 + 2, T0 + 2, T0]


class TestHeaders:
    async def test_remaining_counts_down_by_one_whichever_way_a_request_is_counted(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        remaining = []
        for round_ in range(30):
            state = await limiter.hit_api(user_id="alice")
            assert state is not None
            assert state.limit == 1000
            assert 0 < state.reset_after <= MINUTE
            remaining.append(state.remaining)
            if round_ % 7 == 6:
                await limiter.settle()

        assert remaining == list(range(999, 969, -1))

    async def test_remaining_takes_other_instances_in_once_settled(
        self, limiters: Limiters
    ) -> None:
        first, second = limiters.build(), limiters.build()
        await first.hit_api(user_id="alice")
        await second.hit_api(user_id="alice")
        for _ in range(5):
            await second.hit_api(user_id="alice")
        await second.settle()
        local = await first.hit_api(user_id="alice")
        assert local is not None
        assert local.remaining == 1000 - 2, "what `first` knew: its reading and its own hit"

        await first.settle()

        state = await first.hit_api(user_id="alice")
        assert state is not None
        assert state.remaining == 1000 - 9


class TestServed:
    async def test_every_authenticated_response_says_what_is_left_when_counted_in_process(
        self,
        app: FastAPI,
        database_url: str,
        on_redis: dict[str, object],  # noqa: F811
    ) -> None:
        # `app` is requested so the conftest deletes the rows this test creates.
        async with AsyncExitStack() as stack:
            apps = Apps(database_url, stack)
            application = apps.build(**on_redis, RATE_LIMIT_API="1000/minute")
            http = await apps.client(application)
            alice = await make_user(http, "alice")
            assert (await http.get(ME, headers=alice.headers)).status_code == 200
            commands = Commands(application.state.rate_limiter)

            responses = [await http.get(ME, headers=alice.headers) for _ in range(5)]

            assert commands.take() == [], "counted in process"
            assert [r.status_code for r in responses] == [200] * 5
            for response, left in zip(responses, range(998, 993, -1), strict=True):
                for name in ("Limit", "Remaining", "Reset"):
                    value = response.headers[f"RateLimit-{name}"]
                    assert response.headers[f"X-RateLimit-{name}"] == value
                assert response.headers["RateLimit-Limit"] == "1000"
                assert response.headers["RateLimit-Remaining"] == str(left)
                assert 0 < int(response.headers["RateLimit-Reset"]) <= MINUTE


class TestBound:
    """Across N instances a window admits at most amount + N x B, B = amount // 100; never
    fewer than the amount before the first refusal."""

    AMOUNT = 1000
    BUDGET = AMOUNT // ratelimit.LOCAL_SHARE
    INSTANCES = 3

    async def test_stale_readings_admit_at_most_the_instances_budgets_past_the_limit(
        self, limiters: Limiters
    ) -> None:
        # The worst order: every instance reads the window while it is almost empty, two keep
        # B hits unsettled, and the third fills the window in Redis meanwhile.
        instances = [limiters.build() for _ in range(self.INSTANCES)]
        count = 0
        for limiter in instances:
            count += await admitted(limiter, "alice")
        for limiter in instances[:2]:
            for _ in range(self.BUDGET):
                count += await admitted(limiter, "alice")
        while await admitted(instances[2], "alice"):
            count += 1

        for limiter in instances:
            assert not await admitted(limiter, "alice")  # each decides in Redis now, and refuses

        assert count == self.AMOUNT + 2 * self.BUDGET
        assert count <= self.AMOUNT + self.INSTANCES * self.BUDGET
        for limiter in instances:
            await limiter.settle()
        assert limiters.counted("alice") == self.AMOUNT

    @pytest.mark.parametrize("settles", [0.3, 0.01], ids=["settling-often", "settling-rarely"])
    @pytest.mark.parametrize("seed", range(3))
    async def test_in_any_window_at_most_amount_plus_n_budgets_are_admitted(
        self, limiters: Limiters, clock: Clock, seed: int, settles: float
    ) -> None:
        # Bursts of concurrent requests on random instances, settles running beside them (rarely:
        # readings go stale), the clock moving on by random steps over three windows.
        chance = random.Random(seed)
        instances = [limiters.build() for _ in range(self.INSTANCES)]
        times: list[float] = []
        refused = 0

        async def request(limiter: RateLimiter) -> None:
            nonlocal refused
            now = clock.now
            if await admitted(limiter, "alice"):
                times.append(now)
            else:
                refused += 1

        while clock.now < T0 + 3 * MINUTE:
            work = [request(chance.choice(instances)) for _ in range(chance.randint(1, 6))]
            if chance.random() < settles:
                work.insert(chance.randrange(len(work) + 1), chance.choice(instances).settle())
            await asyncio.gather(*work)
            clock.now += chance.uniform(0, 0.15)

        assert refused > 0, "the schedule reached the limit"
        busiest = most_in_one_window(sorted(times), MINUTE)
        print(
            f"\nseed {seed}: {len(times)} admitted, {refused} refused, at most {busiest} a window"
        )
        assert self.AMOUNT <= busiest <= self.AMOUNT + self.INSTANCES * self.BUDGET

    async def test_one_instance_alone_is_exact(self, limiters: Limiters) -> None:
        limiter = limiters.build()
        count = 0
        for attempt in range(1500):
            count += await admitted(limiter, "alice")
            if attempt % 37 == 0:
                await limiter.settle()

        assert count == self.AMOUNT


def most_in_one_window(times: list[float], seconds: int) -> int:
    """The most of `times` (sorted) inside any window (t - seconds, t]."""
    most, start = 0, 0
    for end, time in enumerate(times):
        while times[start] <= time - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


class TestRedisAway:
    async def test_a_settle_that_fails_keeps_the_hits_in_process_memory(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        for _ in range(6):
            await limiter.hit_api(user_id="alice")  # one in Redis, five unsettled
        limiters.server.kill()

        await limiter.settle()  # raises nothing

        assert limiter.redis is not None
        assert limiter.redis.is_open
        state = await limiter.hit_api(user_id="alice")
        assert state is not None
        assert state.remaining == 1000 - 6, "the five, and this one, in process memory"

    async def test_a_request_that_finds_redis_gone_keeps_the_unsettled_hits_in_memory(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        for _ in range(11):
            await limiter.hit_api(user_id="alice")  # one in Redis, ten unsettled: B is full
        limiters.server.kill()

        state = await limiter.hit_api(user_id="alice")  # goes to Redis, which is gone

        assert state is not None
        assert state.remaining == 1000 - 11, "the ten and this one, in process memory"
        await limiter.settle()  # nothing left to settle

    async def test_the_hits_counted_while_redis_was_away_are_not_sent_again(
        self, limiters: Limiters
    ) -> None:
        limiter = limiters.build("1000/minute")
        for _ in range(6):
            await limiter.hit_api(user_id="alice")
        limiters.server.kill()
        await limiter.settle()
        limiters.server.start()  # the same port, empty
        assert limiter.redis is not None
        for _ in range(100):  # the breaker's probe closes it within about a second
            if not limiter.redis.is_open:
                break
            await asyncio.sleep(0.1)
        assert not limiter.redis.is_open

        await limiter.hit_api(user_id="alice")  # no reading kept: decided in Redis
        await limiter.settle()

        assert limiters.counted("alice") == 1


class TestSettlingLoop:
    async def test_it_settles_in_the_background_and_aclose_settles_the_rest(
        self, limiters: Limiters, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(ratelimit, "SETTLE_SECONDS", 0.01)
        limiter = limiters.build("1000/minute")
        async with limiter.settling():
            assert "rate-limit-settle" in running_tasks()
            for _ in range(5):
                await limiter.hit_api(user_id="alice")
            for _ in range(500):  # bounded: a busy machine may take a while to run the loop
                if limiters.counted("alice") == 5:
                    break
                await asyncio.sleep(0.01)
            assert limiters.counted("alice") == 5
        assert "rate-limit-settle" not in running_tasks()

        await limiter.hit_api(user_id="alice")
        await limiter.aclose()

        assert limiters.counted("alice") == 6

    @pytest.mark.parametrize(
        "settings",
        [{"RATE_LIMIT_ENABLED": False}, {"REDIS_URL": None}],
        ids=["limits-off", "no-redis"],
    )
    async def test_nothing_runs_with_limits_off_or_without_redis(
        self, database_url: str, settings: dict[str, object]
    ) -> None:
        limiter = RateLimiter(
            make_settings(database_url, **{"REDIS_URL": "redis://127.0.0.1:1/0", **settings})
        )
        async with limiter.settling():
            assert "rate-limit-settle" not in running_tasks()
        await limiter.aclose()


def running_tasks() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()}
