"""The per-process headroom that spares most creates a count of their scope's tasks, and why it
cannot carry a scope past its limit."""

from __future__ import annotations

import uuid

from taskhub.tasks.service import QuotaHeadroom


def test_a_scope_is_counted_first_then_takes_a_hundredth_of_its_room_without_counting() -> None:
    headroom = QuotaHeadroom()
    scope = uuid.uuid4()
    assert not headroom.take(scope)  # never counted: count first

    headroom.counted(scope, count=10_000, quota=100_000)

    taken = 0
    while headroom.take(scope):
        taken += 1
    assert taken == 90_000 // QuotaHeadroom.SHARE


def test_near_the_limit_every_create_is_counted() -> None:
    headroom = QuotaHeadroom()
    scope = uuid.uuid4()
    headroom.counted(scope, count=99_500, quota=100_000)
    assert not headroom.take(scope)
    headroom.counted(scope, count=0, quota=2)  # small limits (tests, tight quotas): always counted
    assert not headroom.take(scope)


def test_a_hundred_processes_taking_their_share_at_once_stay_within_the_limit() -> None:
    quota, count = 100_000, 40_000
    processes = [QuotaHeadroom() for _ in range(QuotaHeadroom.SHARE)]
    scope = uuid.uuid4()
    created = 0
    for headroom in processes:
        headroom.counted(scope, count=count, quota=quota)
        while headroom.take(scope):
            created += 1
    assert count + created <= quota


def test_the_scopes_remembered_are_bounded() -> None:
    headroom = QuotaHeadroom(max_scopes=3)
    scopes = [uuid.uuid4() for _ in range(5)]
    for scope in scopes:
        headroom.counted(scope, count=0, quota=100_000)
    assert not headroom.take(scopes[0])  # forgotten: counted again, which is always safe
    assert headroom.take(scopes[-1])
