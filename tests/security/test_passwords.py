"""bcrypt hashing: 72-byte limit enforced (never truncated), failures are False, not exceptions;
a bounded queue for the hashing threads, sized as a wait budget; no file touched."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import bcrypt
import pytest

from taskhub.security import passwords
from taskhub.security.common_passwords import COMMON_PASSWORD_COUNT, is_common_password
from taskhub.security.passwords import (
    BCRYPT_MAX_BYTES,
    MAX_DEFAULT_QUEUE,
    HashingBusy,
    default_queue_limit,
    fits_bcrypt,
    hash_password,
    hashing_full,
    size_hash_queue,
    verify_against_dummy,
    verify_password,
)
from tests.hermetic import process_env

ROUNDS = 4


class TestHashAndVerify:
    async def test_hash_password_gives_a_bcrypt_hash_with_the_requested_cost(self) -> None:
        password_hash = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert password_hash.startswith("$2b$04$")
        assert "plum-kettle-orbit-42" not in password_hash
        assert bcrypt.checkpw(b"plum-kettle-orbit-42", password_hash.encode())

    async def test_hashing_the_same_password_twice_gives_different_salts(self) -> None:
        first = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)
        second = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert first != second

    async def test_verify_password_accepts_the_right_password(self) -> None:
        password_hash = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert (
            await verify_password("plum-kettle-orbit-42", password_hash, queue_limit=None) is True
        )

    @pytest.mark.parametrize(
        "attempt", ["plum-kettle-orbit-43", "PLUM-KETTLE-ORBIT-42", "", "plum-kettle-orbit-42 "]
    )
    async def test_verify_password_rejects_a_wrong_password(self, attempt: str) -> None:
        password_hash = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert await verify_password(attempt, password_hash, queue_limit=None) is False

    async def test_multibyte_password_of_exactly_72_bytes_roundtrips(self) -> None:
        password = "€" * 24
        assert len(password.encode()) == BCRYPT_MAX_BYTES

        password_hash = await hash_password(password, rounds=ROUNDS, queue_limit=None)

        assert await verify_password(password, password_hash, queue_limit=None) is True
        assert await verify_password("€" * 23, password_hash, queue_limit=None) is False


class TestSeventyTwoByteLimit:
    @pytest.mark.parametrize(
        ("password", "fits"),
        [
            ("a" * 72, True),
            ("a" * 73, False),
            ("€" * 24, True),  # 72 bytes
            ("€" * 25, False),  # 75 bytes, 25 characters
            ("a" * 71 + "é", False),  # 73 bytes
            ("", True),
            ("abc\ud800", False),  # a lone surrogate has no UTF-8 form at all
            ("\udfff", False),
        ],
    )
    def test_fits_bcrypt_counts_utf8_bytes(self, password: str, fits: bool) -> None:
        assert fits_bcrypt(password) is fits

    async def test_hash_password_refuses_input_over_72_bytes(self) -> None:
        with pytest.raises(ValueError, match="72 bytes"):
            await hash_password("€" * 25, rounds=ROUNDS, queue_limit=None)

    async def test_verify_password_over_72_bytes_returns_false_without_raising(self) -> None:
        password_hash = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert await verify_password("x" * 100, password_hash, queue_limit=None) is False
        assert await verify_password("€" * 25, password_hash, queue_limit=None) is False
        assert await verify_password("y" * 100_000, password_hash, queue_limit=None) is False

    async def test_verify_password_with_a_lone_surrogate_returns_false_without_raising(
        self,
    ) -> None:
        password_hash = await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=None)

        assert (
            await verify_password("plum-kettle-orbit-42\ud800", password_hash, queue_limit=None)
            is False
        )
        await verify_against_dummy("\ud800", rounds=ROUNDS, queue_limit=None)
        with pytest.raises(ValueError, match="72 bytes"):
            await hash_password("\ud800" * 8, rounds=ROUNDS, queue_limit=None)

    async def test_verify_password_is_not_fooled_by_truncation(self) -> None:
        password = "k" * 72
        password_hash = await hash_password(password, rounds=ROUNDS, queue_limit=None)

        # bcrypt alone would ignore everything after byte 72 and accept these.
        assert await verify_password(password + "extra", password_hash, queue_limit=None) is False
        assert await verify_password(password + "€", password_hash, queue_limit=None) is False


class TestDummyVerification:
    async def test_verify_against_dummy_runs_and_returns_nothing(self) -> None:
        await verify_against_dummy("whatever-password", rounds=ROUNDS, queue_limit=None)

    async def test_verify_against_dummy_takes_over_long_passwords(self) -> None:
        await verify_against_dummy("€" * 100, rounds=ROUNDS, queue_limit=None)
        await verify_against_dummy("", rounds=ROUNDS, queue_limit=None)


class TestCommonPasswords:
    @pytest.mark.parametrize("password", ["password1", "PASSWORD1", "Qwerty123", "iloveyou"])
    def test_common_passwords_are_found_ignoring_case(self, password: str) -> None:
        assert is_common_password(password) is True

    @pytest.mark.parametrize("password", ["plum-kettle-orbit-42", "zq8-vk3w", "€€€€€€€€"])
    def test_uncommon_passwords_are_not_found(self, password: str) -> None:
        assert is_common_password(password) is False

    def test_the_list_holds_at_least_the_asvs_minimum(self) -> None:
        assert COMMON_PASSWORD_COUNT >= 3000


class TestHashingThreads:
    async def test_hashing_runs_at_the_event_loops_priority(self) -> None:
        """Not nicer: a flood of reads on every core must not starve it."""
        loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        hashing_niceness = await passwords._in_hashing_thread(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )

        assert hashing_niceness == loop_niceness

    async def test_logins_queue_on_cores_minus_one_threads(self) -> None:
        threads = max(1, (os.cpu_count() or 2) - 1)
        started = threading.Semaphore(0)
        release = threading.Event()
        ran_on: set[int] = set()

        def held() -> None:
            ran_on.add(threading.get_ident())
            started.release()
            release.wait(WAIT_SECONDS)

        pool = passwords._hashing_pool()
        futures = [pool.submit(8, held) for _ in range(8)]
        try:
            # Every thread the pool has is now busy: the rest wait, so none runs on a new thread.
            for _ in range(threads):
                assert started.acquire(timeout=WAIT_SECONDS)
        finally:
            release.set()
            for future in futures:
                future.result(timeout=WAIT_SECONDS)

        assert len(ran_on) == threads


# Bounded waits, so that a broken bound fails the test rather than hanging it.
WAIT_SECONDS = 10.0


class Blockers:
    """Hashing-pool jobs that hold their place until released (at most WAIT_SECONDS)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.futures: list[Future[bool]] = []

    def submit(self, count: int, queue_limit: int | None = None) -> None:
        pool = passwords._hashing_pool()
        for _ in range(count):
            self.futures.append(pool.submit(queue_limit, self.release.wait, WAIT_SECONDS))

    def still_held(self) -> bool:
        return not self.release.is_set() and not any(future.done() for future in self.futures)

    def finish(self) -> None:
        self.release.set()
        for future in self.futures:
            future.result(timeout=WAIT_SECONDS)


@pytest.fixture
def blockers() -> Iterator[Blockers]:
    held = Blockers()
    try:
        yield held
    finally:
        held.finish()


@pytest.fixture
def sized_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test sizes the default queue to, the process's own size comes back after."""
    pool = passwords._hashing_pool()
    monkeypatch.setattr(pool, "default_limit", pool.default_limit)


class TestHashingQueue:
    THREADS = max(1, (os.cpu_count() or 2) - 1)

    async def test_past_the_limit_a_hash_is_refused_at_once(self, blockers: Blockers) -> None:
        blockers.submit(self.THREADS + 2, queue_limit=2)  # every thread busy, 2 waiting

        with pytest.raises(HashingBusy) as refused:
            await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=2)

        assert blockers.still_held()  # refused without waiting for a thread
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "1"}

    async def test_places_free_up_as_hashes_finish(self, blockers: Blockers) -> None:
        blockers.submit(self.THREADS + 1, queue_limit=1)
        with pytest.raises(HashingBusy):
            await verify_against_dummy("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=1)

        blockers.finish()

        await verify_against_dummy("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=1)
        assert passwords._hashing_pool().waiting == 0

    async def test_a_waiter_that_gives_up_frees_its_place(self, blockers: Blockers) -> None:
        blockers.submit(self.THREADS)
        waiter = asyncio.create_task(
            hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=1)
        )
        await asyncio.sleep(0)  # the task runs up to its wait: its hash is submitted
        assert passwords._hashing_pool().waiting == 1

        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

        assert passwords._hashing_pool().waiting == 0


class TestTheDefaultQueueIsAWaitBudget:
    """Unset HASH_QUEUE_LIMIT: as many hashes wait as the threads start within HASH_QUEUE_WAIT
    at the configured cost (the contract, amended 2026-12-07). Durations are given, not timed."""

    THREADS = max(1, (os.cpu_count() or 2) - 1)

    def test_a_quarter_second_hash_lets_four_wait_per_thread_in_a_second(self) -> None:
        assert default_queue_limit(threads=1, wait=1.0, hash_seconds=0.25) == 4
        assert default_queue_limit(threads=3, wait=1.0, hash_seconds=0.25) == 12
        assert default_queue_limit(threads=1, wait=2.0, hash_seconds=0.3) == 7  # started by 2.1 s

    def test_a_millisecond_hash_gives_a_long_queue_but_a_bounded_one(self) -> None:
        assert default_queue_limit(threads=1, wait=0.1, hash_seconds=0.001) == 100
        assert default_queue_limit(threads=1, wait=1.0, hash_seconds=0.001) == MAX_DEFAULT_QUEUE
        assert default_queue_limit(threads=7, wait=60.0, hash_seconds=0.0) == MAX_DEFAULT_QUEUE

    def test_a_hash_slower_than_the_wait_still_lets_one_wait_per_thread(self) -> None:
        assert default_queue_limit(threads=1, wait=1.0, hash_seconds=5.0) == 1
        assert default_queue_limit(threads=3, wait=1.0, hash_seconds=5.0) == 3

    @pytest.mark.usefixtures("sized_queue")
    async def test_the_sized_queue_refuses_past_its_budget(self, blockers: Blockers) -> None:
        timed: list[int] = []

        def quarter_second(rounds: int) -> float:
            timed.append(rounds)
            return 0.25

        limit = size_hash_queue(rounds=12, wait=1.0, hash_seconds=quarter_second)

        assert timed == [12]  # the configured cost is the one timed
        assert limit == 4 * self.THREADS
        blockers.submit(self.THREADS + limit - 1)
        assert not hashing_full(queue_limit=None)
        blockers.submit(1)
        assert hashing_full(queue_limit=None)
        with pytest.raises(HashingBusy):
            await verify_password("plum-kettle-orbit-42", "$2b$04$" + "x" * 53, queue_limit=None)
        assert not hashing_full(queue_limit=limit + 1)  # HASH_QUEUE_LIMIT, when set, wins

    @pytest.mark.usefixtures("sized_queue")
    def test_the_size_comes_from_one_timed_hash_at_the_configured_cost(self) -> None:
        limit = size_hash_queue(rounds=ROUNDS, wait=1.0)

        assert limit == default_queue_limit(
            threads=self.THREADS,
            wait=1.0,
            hash_seconds=passwords.measured_hash_seconds(ROUNDS),
        )
        assert passwords.measured_hash_seconds(ROUNDS) > 0


# Hashes, sizes the queue and checks a password in a fresh process, reporting every file, lock
# and directory operation made meanwhile (Python's audit events): the pool, its threads and the
# queue's sizing all made there.
NOTHING_ON_DISK = """
import asyncio, json, sys
from taskhub.security import passwords
touched = []
WATCHED = {
    "open", "os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.symlink", "os.link",
    "os.chmod", "os.chown", "os.truncate", "fcntl.flock", "fcntl.lockf", "fcntl.fcntl",
    "tempfile.mkdtemp", "tempfile.mkstemp",
}
sys.addaudithook(lambda event, args: touched.append([event, repr(args)]) if event in WATCHED else None)
passwords.size_hash_queue(rounds=4, wait=1.0)
async def main():
    digest = await passwords.hash_password("plum-kettle-orbit-42", rounds=4, queue_limit=None)
    assert await passwords.verify_password("plum-kettle-orbit-42", digest, queue_limit=None)
    await passwords.verify_against_dummy("plum-kettle-orbit-42", rounds=4, queue_limit=None)
asyncio.run(main())
print(json.dumps(touched))
"""


def test_hashing_creates_or_opens_no_file_so_no_other_user_can_affect_it(tmp_path: Path) -> None:
    """Nothing in $TMPDIR or anywhere else: no file another local user could plant, link or
    lock (the shared slot files were all three), so no attack on it needs a test of its own."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    finished = subprocess.run(  # noqa: S603 - our own interpreter and a constant script
        [sys.executable, "-c", NOTHING_ON_DISK],
        env=process_env() | {"TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert json.loads(finished.stdout) == []
    assert list(tmp.iterdir()) == []


class FakeClocks:
    """Clocks a test moves by hand: `hash(cpu, loop)` is a hash that took `cpu` seconds of the
    thread's CPU and wall time while the event loop used `loop` seconds of CPU."""

    def __init__(self) -> None:
        self.now = 100.0
        self.cpu = 0.0
        self.loop = 0.0
        self.slept: list[float] = []

    def clocks(self) -> passwords.Clocks:
        return passwords.Clocks(
            wall=lambda: self.now,
            thread_cpu=lambda: self.cpu,
            loop_cpu=lambda: self.loop,
            sleep=self._sleep,
        )

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def hash(self, *, cpu: float, loop: float) -> str:
        self.now += cpu
        self.cpu += cpu
        self.loop += loop
        return "hashed"


class TestCpuShare:
    def test_while_the_loop_is_busy_a_thread_rests_to_keep_to_its_share(self) -> None:
        fake = FakeClocks()
        share = passwords.CpuShare(fake.clocks())

        share.run(partial(fake.hash, cpu=0.3, loop=0.3))  # the loop busy the whole hash
        share.run(partial(fake.hash, cpu=0.3, loop=0.3))

        # 0.3 s of CPU at a 0.6 share takes 0.5 s: the second hash starts 0.2 s after the first.
        assert fake.slept == [pytest.approx(0.3 / passwords.LOADED_SHARE - 0.3)]

    def test_while_the_loop_is_idle_hashes_run_back_to_back(self) -> None:
        fake = FakeClocks()
        share = passwords.CpuShare(fake.clocks())

        for _ in range(3):
            share.run(partial(fake.hash, cpu=0.3, loop=0.0))

        assert fake.slept == []

    def test_a_failed_hash_still_leaves_its_thread_resting(self) -> None:
        fake = FakeClocks()
        share = passwords.CpuShare(fake.clocks())

        def failing() -> str:
            fake.hash(cpu=0.3, loop=0.3)
            raise ValueError("bcrypt refused")

        with pytest.raises(ValueError, match="bcrypt refused"):
            share.run(failing)
        share.run(partial(fake.hash, cpu=0.3, loop=0.3))

        assert fake.slept == [pytest.approx(0.3 / passwords.LOADED_SHARE - 0.3)]

    def test_a_rest_is_bounded_whatever_the_clocks_say(self) -> None:
        assert passwords.CpuShare.rest(cpu=1_000.0, wall=0.001, loop_busy=1.0) == (
            passwords.MAX_REST_SECONDS
        )

    @pytest.mark.parametrize(
        ("loop_busy", "share"),
        [(0.0, 1.0), (passwords.LOOP_IDLE, 1.0), (1.0, passwords.LOADED_SHARE), (0.5, 0.8)],
    )
    def test_the_share_moves_with_the_loops_load(self, loop_busy: float, share: float) -> None:
        assert passwords.CpuShare.per_thread(loop_busy) == pytest.approx(share)

    def test_each_hashing_thread_keeps_its_own_turn(self) -> None:
        fake = FakeClocks()
        share = passwords.CpuShare(fake.clocks())
        share.run(
            partial(fake.hash, cpu=0.3, loop=0.3)
        )  # this thread now rests before its next hash

        other = threading.Thread(target=share.run, args=(partial(fake.hash, cpu=0.3, loop=0),))
        other.start()
        other.join()

        assert fake.slept == []
