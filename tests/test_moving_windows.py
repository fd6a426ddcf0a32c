"""Several moving windows decided and counted in one step, the same in process memory and in
Redis: a full window refuses and nothing is counted anywhere; a share that is full is only left
uncounted, and its follower with it; a hit given back frees exactly its place. Stamps are given,
so no test waits for a window to pass."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from taskhub.moving_windows import (
    SWEEP_SECONDS,
    Hits,
    MemoryWindows,
    RedisWindows,
    Window,
    WindowsFull,
)
from tests.security.test_rate_limits import REDIS_URL

T0 = 1_800_000_000.0


class Store:
    """Either store, awaited the same way."""

    def __init__(self, store: MemoryWindows | RedisWindows) -> None:
        self.store = store

    async def admit(self, windows: list[Window], at: float) -> Hits:
        admitted = self.store.admit(windows, f"{at:.6f}")
        return await admitted if inspect.isawaitable(admitted) else admitted

    async def give_back(self, hits: Hits) -> None:
        given = self.store.give_back(hits)
        if inspect.isawaitable(given):
            await given


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield Store(MemoryWindows())
        return
    prefix = f"taskhub-test-windows-{uuid.uuid4().hex}"
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()  # no Redis: the test errors here, it is never skipped
        yield Store(RedisWindows(client, prefix=prefix))
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_full_window_refuses_and_nothing_is_counted_anywhere(store: Store) -> None:
    narrow, wide = Window("narrow", 1, 60), Window("wide", 3, 60)
    await store.admit([narrow, wide], T0)

    with pytest.raises(WindowsFull) as refused:
        await store.admit([narrow, wide], T0 + 1)

    assert [(full.window, full.reset_after) for full in refused.value.full] == [(narrow, 59)]
    # The refused attempt took no place in the wide window: two are left.
    assert (await store.admit([wide], T0 + 2)).keys == ("wide",)
    assert (await store.admit([wide], T0 + 3)).keys == ("wide",)
    with pytest.raises(WindowsFull):
        await store.admit([wide], T0 + 4)
    assert (await store.admit([narrow, wide], T0 + 61)).keys == ("narrow", "wide")


async def test_a_full_share_is_left_uncounted_and_its_follower_with_it(store: Store) -> None:
    share = Window("share", 1, 60, refuses=False)
    ceiling = Window("ceiling", 5, 60, follows_previous=True)
    assert (await store.admit([share, ceiling], T0)).keys == ("share", "ceiling")

    assert (await store.admit([share, ceiling], T0 + 1)).keys == ()

    other_share = Window("other-share", 1, 60, refuses=False)
    assert (await store.admit([other_share, ceiling], T0 + 2)).keys == ("other-share", "ceiling")


async def test_a_hit_given_back_frees_exactly_its_place(store: Store) -> None:
    window = Window("given", 2, 60)
    first = await store.admit([window], T0)
    second = await store.admit([window], T0 + 1)
    with pytest.raises(WindowsFull):
        await store.admit([window], T0 + 2)

    await store.give_back(second)
    await store.give_back(Hits(f"{T0 + 30:.6f}", ("given",)))  # never counted: nothing changes

    assert (await store.admit([window], T0 + 3)).keys == ("given",)
    with pytest.raises(WindowsFull) as refused:
        await store.admit([window], T0 + 4)
    assert refused.value.full[0].reset_after == 56  # the first hit is still there
    assert first.keys == ("given",)


def test_process_memory_forgets_the_windows_that_have_emptied() -> None:
    windows = MemoryWindows()
    windows.admit([Window("once", 1, 60)], f"{T0:.6f}")
    windows.admit([Window("recent", 1, 3600)], f"{T0 + 50:.6f}")
    assert len(windows) == 2

    windows.admit([Window("later", 1, 60)], f"{T0 + SWEEP_SECONDS + 61:.6f}")

    assert len(windows) == 2  # "once" is gone; "recent" and "later" remain
    windows.admit([Window("once", 1, 60)], f"{T0 + SWEEP_SECONDS + 62:.6f}")


@pytest.fixture
async def shared() -> AsyncIterator[RedisWindows]:
    prefix = f"taskhub-test-windows-{uuid.uuid4().hex}"
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
        yield RedisWindows(client, prefix=prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_settling_counts_each_windows_hits_and_says_where_each_stands(
    shared: RedisWindows,
) -> None:
    first, second = Window("first", 5, 60), Window("second", 3, 60)
    await shared.hit(first, f"{T0:.6f}")

    readings = await shared.settle(
        [(first, [T0 + 1, T0 + 2]), (second, [T0 + 3, T0 + 4, T0 + 5, T0 + 6])],
        f"{T0 + 61.5:.6f}",
    )

    # 61.5 s on, the first window's T0 and T0 + 1 have left it; the second kept its newest three.
    assert [(r.inside, r.oldest) for r in readings] == [(1, T0 + 2), (3, T0 + 4)]
    assert readings[0].taken == readings[1].taken > 0
    admitted, reading = await shared.hit(second, f"{T0 + 62:.6f}")
    assert not admitted
    assert reading.taken >= readings[0].taken


async def test_a_stamp_older_than_the_newest_counted_is_counted_as_that_one(
    shared: RedisWindows,
) -> None:
    window = Window("late", 10, 60)
    await shared.hit(window, f"{T0 + 5:.6f}")

    admitted, reading = await shared.hit(window, f"{T0 + 6:.6f}", [T0 + 1, T0 + 7])

    # T0 + 1 arrived after T0 + 5: the list stays newest first, with no stamp lost.
    assert admitted
    assert (reading.inside, reading.oldest) == (4, T0 + 5)
    [after] = await shared.settle([(window, [T0 + 2])], f"{T0 + 8:.6f}")
    assert (after.inside, after.oldest) == (5, T0 + 5)


async def test_hits_settled_past_the_amount_fill_the_window(shared: RedisWindows) -> None:
    window = Window("over", 3, 60)

    admitted, reading = await shared.hit(window, f"{T0 + 5:.6f}", [T0, T0 + 1, T0 + 2, T0 + 3])

    assert not admitted
    assert (reading.inside, reading.oldest) == (3, T0 + 1)


def test_process_memory_adds_hits_decided_elsewhere_in_order() -> None:
    windows = MemoryWindows()
    window = Window("added", 3, 60)
    windows.hit(window, f"{T0 + 2:.6f}")

    windows.add(window, [T0, T0 + 1, T0 + 3])

    refused = windows.hit(window, f"{T0 + 4:.6f}")
    assert (refused.admitted, refused.inside, refused.reset_after) == (False, 3, 57)
    windows.add(window, [])
    assert windows.hit(window, f"{T0 + 61.5:.6f}").admitted
