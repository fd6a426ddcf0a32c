"""bcrypt hashing: 72-byte limit enforced (never truncated), failures are False, not exceptions;
a bounded queue for the hashing threads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import bcrypt
import pytest

from taskhub.security import passwords
from taskhub.security.common_passwords import COMMON_PASSWORD_COUNT, is_common_password
from taskhub.security.passwords import (
    BCRYPT_MAX_BYTES,
    HASHING_SLOTS_ENV,
    LOADED_SHARE,
    LOOP_BUSY,
    LOOP_IDLE,
    MAX_REST_SECONDS,
    CpuShare,
    HashingBusy,
    HashingSlot,
    fits_bcrypt,
    hash_password,
    verify_against_dummy,
    verify_password,
)

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
        """Not nicer: a flood of reads on every core must not starve it (its share of the CPU
        is kept by CpuShare instead)."""
        loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        hashing_niceness = await passwords._in_hashing_thread(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )

        assert hashing_niceness == loop_niceness

    async def test_logins_queue_on_cores_minus_one_threads(self) -> None:
        running = 0
        most = 0
        guard = threading.Lock()

        def busy() -> None:
            nonlocal running, most
            with guard:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with guard:
                running -= 1

        await asyncio.gather(*(passwords._in_hashing_thread(busy, queue_limit=8) for _ in range(8)))

        assert most == max(1, (os.cpu_count() or 2) - 1)


class Blockers:
    """Hashing-pool jobs that hold their place until released (at most 10 s, so a broken
    bound fails the test rather than hanging it)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.futures: list[Future[None]] = []

    def submit(self, count: int, queue_limit: int | None = None) -> None:
        pool = passwords._hashing_pool()
        for _ in range(count):
            self.futures.append(pool.submit(queue_limit, self.release.wait, 10))

    def finish(self) -> None:
        self.release.set()
        for future in self.futures:
            future.result(timeout=10)


@pytest.fixture
def blockers() -> Iterator[Blockers]:
    held = Blockers()
    try:
        yield held
    finally:
        held.finish()


class TestHashingQueue:
    THREADS = max(1, (os.cpu_count() or 2) - 1)

    async def test_past_the_limit_a_hash_is_refused_at_once(self, blockers: Blockers) -> None:
        blockers.submit(self.THREADS + 2, queue_limit=2)  # every thread busy, 2 waiting

        began = time.monotonic()
        with pytest.raises(HashingBusy) as refused:
            await hash_password("plum-kettle-orbit-42", rounds=ROUNDS, queue_limit=2)

        assert time.monotonic() - began < 1
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "1"}

    async def test_the_default_limit_is_four_waiting_hashes_per_thread(
        self, blockers: Blockers
    ) -> None:
        blockers.submit(self.THREADS + 4 * self.THREADS)

        with pytest.raises(HashingBusy):
            await verify_password("plum-kettle-orbit-42", "$2b$04$" + "x" * 53, queue_limit=None)

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
        await asyncio.sleep(0.05)
        assert passwords._hashing_pool().waiting == 1

        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

        assert passwords._hashing_pool().waiting == 0


class TestCpuShare:
    """Hashing's share of the CPU: what a hashing slot may use, its rest between hashes, and the
    slots the worker processes share (ADR 0004). Arithmetic and locks only: the shares
    themselves are measured by `make bench`."""

    def test_an_idle_event_loop_leaves_a_slot_a_whole_core_without_rest(self) -> None:
        assert CpuShare.per_slot(loop_busy=0.0) == 1.0
        assert CpuShare.rest(cpu=0.25, wall=0.25, loop_busy=0.0) == 0.0

    def test_a_busy_event_loop_leaves_hashing_its_loaded_share(self) -> None:
        assert CpuShare.per_slot(loop_busy=1.0) == pytest.approx(LOADED_SHARE)
        # A hash that got most of a core while it ran waits until it has used no more than that.
        assert CpuShare.rest(cpu=0.25, wall=0.3, loop_busy=1.0) == pytest.approx(
            0.25 / LOADED_SHARE - 0.3
        )

    def test_the_share_moves_linearly_between_an_idle_and_a_busy_loop(self) -> None:
        middle = (LOOP_IDLE + LOOP_BUSY) / 2

        assert CpuShare.per_slot(LOOP_IDLE) == 1.0
        assert CpuShare.per_slot(middle) == pytest.approx((1 + LOADED_SHARE) / 2)
        assert CpuShare.per_slot(LOOP_BUSY) == pytest.approx(LOADED_SHARE)

    def test_a_rest_is_bounded(self) -> None:
        assert CpuShare.rest(cpu=10.0, wall=0.1, loop_busy=1.0) == MAX_REST_SECONDS

    def test_a_slot_over_its_share_rests_before_its_next_hash(self, tmp_path: Path) -> None:
        slot = HashingSlot(str(tmp_path / "slot-0"))
        share = CpuShare([slot])
        busy = itertools.count()  # the event loop counts as busy across the hash
        share._loop_cpu = lambda: next(busy) * 10

        assert share.run(passwords._hash_sync, "plum-kettle-orbit-42", 10)  # ~60 ms of CPU

        with slot.held() as turn:
            assert turn.next_start > time.monotonic()

    def test_a_slot_rests_whichever_process_hashed_last(self, tmp_path: Path) -> None:
        slot = HashingSlot(str(tmp_path / "slot-0"))
        with slot.held() as turn:  # as another worker would leave it
            turn.next_start = time.monotonic() + 0.3

        began = time.monotonic()
        CpuShare([slot]).run(passwords._hash_sync, "plum-kettle-orbit-42", 4)

        assert time.monotonic() - began >= 0.3

    def test_worker_processes_share_the_hashing_slots(self, tmp_path: Path) -> None:
        """A hash waits while another process holds the slot: two workers on two cores hash on
        one core between them, not one each."""
        slot_path = tmp_path / "slot-0"
        with subprocess.Popen(  # noqa: S603 - our own interpreter and a constant script
            [sys.executable, "-c", HOLD_SLOT, str(slot_path)], stdout=subprocess.PIPE, text=True
        ) as holder:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            began = time.monotonic()
            CpuShare([HashingSlot(str(slot_path))]).run(
                passwords._hash_sync, "plum-kettle-orbit-42", 4
            )
            waited = time.monotonic() - began

        assert waited >= 0.4

    def test_a_slots_directory_a_tmp_cleaner_removed_is_made_again(self, tmp_path: Path) -> None:
        directory = tmp_path / "slots"

        slot = HashingSlot(str(directory / "slot-0"))

        assert CpuShare([slot]).run(passwords._hash_sync, "plum-kettle-orbit-42", 4)
        assert (directory / "slot-0").exists()

    def test_threads_sharing_a_slot_take_turns(self, tmp_path: Path) -> None:
        slot = HashingSlot(str(tmp_path / "slot-0"))
        finished = threading.Event()

        def hash_beside() -> None:
            CpuShare([slot]).run(passwords._hash_sync, "plum-kettle-orbit-42", 4)
            finished.set()

        with slot.held():
            beside = threading.Thread(target=hash_beside)
            beside.start()
            assert not finished.wait(timeout=0.3)
        beside.join(timeout=10)

        assert finished.is_set()

    def test_a_failed_hash_still_leaves_its_slot_resting(self, tmp_path: Path) -> None:
        slot = HashingSlot(str(tmp_path / "slot-0"))
        share = CpuShare([slot])
        busy = itertools.count()
        share._loop_cpu = lambda: next(busy) * 10

        def burn_then_fail() -> None:
            passwords._hash_sync("plum-kettle-orbit-42", 10)
            raise ValueError("after the work")

        with pytest.raises(ValueError, match="after the work"):
            share.run(burn_then_fail)

        with slot.held() as turn:
            assert turn.next_start > time.monotonic()

    def test_the_nth_hashing_thread_of_a_process_takes_the_nth_slot(self, tmp_path: Path) -> None:
        slots = [HashingSlot(str(tmp_path / f"slot-{n}")) for n in range(2)]
        share = CpuShare(slots)
        taken: list[HashingSlot] = []

        def take() -> None:
            taken.append(share._slot())

        for _ in range(2):
            thread = threading.Thread(target=take)
            thread.start()
            thread.join()

        assert taken == slots

    def test_the_server_gives_its_workers_one_slots_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(HASHING_SLOTS_ENV, str(tmp_path))

        slots = passwords.hashing_slots(2)

        assert [slot.path for slot in slots] == [str(tmp_path / "slot-0"), str(tmp_path / "slot-1")]

    def test_a_process_on_its_own_keeps_private_slots_that_leave_nothing_behind(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(HASHING_SLOTS_ENV, raising=False)

        first, second = passwords.hashing_slots(1), passwords.hashing_slots(1)

        assert first[0].path != second[0].path
        assert not os.path.exists(os.path.dirname(first[0].path))
        with first[0].held() as turn:  # the open file still works
            turn.next_start = 1.0
        with first[0].held() as turn:
            assert turn.next_start == 1.0

    def test_the_server_removes_its_slots_directory_when_it_exits(self) -> None:
        script = "from taskhub.security import passwords; print(passwords.shared_slots_directory())"
        finished = subprocess.run(  # noqa: S603 - our own interpreter and a constant script
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )

        assert finished.stdout.strip().startswith(os.path.join(tempfile.gettempdir(), "taskhub-"))
        assert not os.path.exists(finished.stdout.strip())


# Holds the slot file named by argv[1] for half a second, saying "held" once it has it.
HOLD_SLOT = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(0.5)
"""
