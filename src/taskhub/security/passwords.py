"""bcrypt hashing, run on its own threads behind a bounded queue, with a share of the CPU: a burst
of logins can neither stall the event loop nor pile up, and a flood of reads cannot starve it."""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import itertools
import os
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import bcrypt

from taskhub.errors import ServiceUnavailable

BCRYPT_MAX_BYTES = 72

_CORES = os.cpu_count() or 2
# bcrypt is CPU-bound and releases the GIL; leaving one core free keeps reads flowing
# while logins queue (see docs/adr/0004-password-hashing.md).
_HASHING_THREADS = max(1, _CORES - 1)
# HASH_QUEUE_LIMIT's default: hashes that may wait for a thread, per hashing thread. At bcrypt
# 12 (~0.25 s a hash) the last of them starts within about a second.
QUEUE_PER_THREAD = 4
# Hashing's share of the CPU (ADR 0004). The machine has cores - 1 hashing slots, shared by every
# worker process of the server (HASHING_SLOTS_ENV): a hash holds a slot, and a slot hashes on at
# most one core's worth of CPU time, whichever worker's logins it serves. While the event loop of
# the process hashing is busy serving, the slot keeps a loaded share of its core and serving gets
# the rest. The hashing threads run at the process's own priority, so that share is theirs even
# when reads saturate every core (10 steps nicer, they got a few % of a core there and logins
# timed out), and rest between hashes to keep to it.
LOADED_SHARE = 0.6
# The event loop's use of a core, measured across a hash, below which it counts as idle and
# above which as busy (the share moves linearly in between).
LOOP_IDLE, LOOP_BUSY = 0.25, 0.75
# A rest never exceeds this, whatever the clocks said.
MAX_REST_SECONDS = 5.0
# The directory of the slot files, set by `python -m taskhub serve` for its worker processes
# (__main__.py); a process started any other way keeps private slots.
HASHING_SLOTS_ENV = "TASKHUB_HASHING_SLOTS"
_NEXT_START = struct.Struct("d")

T = TypeVar("T")


class HashingBusy(ServiceUnavailable):
    """More password hashes are waiting than HASH_QUEUE_LIMIT allows: refused at once."""

    detail = "Too many password checks are waiting; retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def _loop_cpu_clock() -> Callable[[], float]:
    """The CPU time of the main thread, where the server runs its event loop (0 where the
    platform cannot tell: the loop then counts as idle)."""
    try:
        clock = time.pthread_getcpuclockid(threading.main_thread().ident or 0)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return lambda: 0.0
    return lambda: time.clock_gettime(clock)


@dataclass
class SlotTurn:
    """A turn at a slot: when it may start a hash, on the machine-wide monotonic clock."""

    next_start: float


class HashingSlot:
    """One of the machine's hashing slots: a file whose lock a hash holds while it runs, and
    which records, on the machine-wide monotonic clock, when the slot may start its next hash.
    Worker processes share it through the file, each opening it once; a process that dies lets
    go of the lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = _open_slot_file(path)
        # flock excludes other open files, not the threads that share this one.
        self._threads = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[SlotTurn]:
        """The slot's lock, held until the block ends; the turn it yields says when the slot may
        start a hash, and the block moves that on for the next turn."""
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                recorded = os.pread(self._fd, _NEXT_START.size, 0)
                turn = SlotTurn(
                    _NEXT_START.unpack(recorded)[0] if len(recorded) == _NEXT_START.size else 0.0
                )
                try:
                    yield turn
                finally:
                    os.pwrite(self._fd, _NEXT_START.pack(turn.next_start), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def _open_slot_file(path: str) -> int:
    """The slot file, opened for the life of the process; its directory made again if a /tmp
    cleaner removed it (every worker makes it at the same path, so they still share it)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class CpuShare:
    """How much CPU a hashing slot may use, and the rest that keeps it so.

    bcrypt cannot be paused halfway, so a slot keeps to its share on average: after a hash that
    used `cpu` seconds of CPU over `wall` seconds, it starts no new one for cpu / share - wall
    seconds. The answer to a hash is never delayed, only the next hash.
    """

    def __init__(self, slots: list[HashingSlot]) -> None:
        self.slots = slots
        self._loop_cpu = _loop_cpu_clock()
        self._numbering = itertools.count()
        self._thread = threading.local()

    @staticmethod
    def per_slot(loop_busy: float) -> float:
        """Cores a slot may use on average while the event loop uses `loop_busy` of one."""
        load = min(1.0, max(0.0, (loop_busy - LOOP_IDLE) / (LOOP_BUSY - LOOP_IDLE)))
        return 1 - (1 - LOADED_SHARE) * load

    @classmethod
    def rest(cls, *, cpu: float, wall: float, loop_busy: float) -> float:
        """Seconds before the slot's next hash."""
        return min(MAX_REST_SECONDS, max(0.0, cpu / cls.per_slot(loop_busy) - wall))

    def run(self, work: Callable[..., T], *args: object) -> T:
        """`work`, on the calling hashing thread, holding its slot once the slot's rest from its
        last hash (by any process) is over."""
        with self._slot().held() as turn:
            pause = turn.next_start - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, MAX_REST_SECONDS))
            began, cpu, loop = time.monotonic(), time.thread_time(), self._loop_cpu()
            try:
                return work(*args)
            finally:
                wall = max(time.monotonic() - began, 1e-6)
                loop_busy = (self._loop_cpu() - loop) / wall
                used = time.thread_time() - cpu
                turn.next_start = time.monotonic() + self.rest(
                    cpu=used, wall=wall, loop_busy=loop_busy
                )

    def _slot(self) -> HashingSlot:
        """The slot of the calling thread: the n-th hashing thread of every process shares the
        n-th slot."""
        if not hasattr(self._thread, "slot"):
            self._thread.slot = self.slots[next(self._numbering) % len(self.slots)]
        slot: HashingSlot = self._thread.slot
        return slot


def hashing_slots(count: int) -> list[HashingSlot]:
    """The machine's slots: in the directory the server gave its workers, else this process's
    own, whose files are removed once open so that nothing is left behind, however it ends."""
    shared = os.environ.get(HASHING_SLOTS_ENV)
    directory = shared or tempfile.mkdtemp(prefix="taskhub-hashing-")
    slots = [HashingSlot(os.path.join(directory, f"slot-{n}")) for n in range(count)]
    if not shared:
        for slot in slots:
            os.unlink(slot.path)
        os.rmdir(directory)
    return slots


def shared_slots_directory() -> str:
    """A new directory (mode 0700) for the slot files of a server's workers, removed when the
    server exits."""
    directory = tempfile.mkdtemp(prefix="taskhub-hashing-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


class _HashingPool:
    """Its own threads, first come, first served, each keeping to its share of the CPU. Counts
    the hashes it holds (running or waiting) so the wait is bounded."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.share = CpuShare(hashing_slots(threads))
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        self._lock = threading.Lock()  # the count is updated from the hashing threads too
        self._held = 0

    @property
    def waiting(self) -> int:
        """Hashes waiting for a thread."""
        return max(0, self._held - self.threads)

    def full(self, queue_limit: int | None) -> bool:
        """Whether `queue_limit` hashes (default QUEUE_PER_THREAD x the threads) are waiting."""
        limit = QUEUE_PER_THREAD * self.threads if queue_limit is None else queue_limit
        return self._held >= self.threads + limit

    def submit(self, queue_limit: int | None, work: Callable[..., T], *args: object) -> Future[T]:
        """Run `work` on a hashing thread; HashingBusy, at once, if the queue is full."""
        with self._lock:
            if self.full(queue_limit):
                raise HashingBusy()
            self._held += 1
        future = self._executor.submit(self.share.run, work, *args)
        # Only once the work is done (or cancelled before it ran) is its place free: a request
        # that stops waiting for a hash does not stop the hash.
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Future[T]) -> None:
        with self._lock:
            self._held -= 1


@lru_cache(maxsize=1)
def _hashing_pool() -> _HashingPool:
    return _HashingPool(_HASHING_THREADS)


def hashing_full(*, queue_limit: int | None) -> bool:
    """Whether a hash submitted now would be refused (HashingBusy). The HTTP layer asks before a
    request that needs one does any other work (http/middleware.py); the queue is checked again
    when the hash is submitted, so this only refuses earlier, never admits more."""
    return _hashing_pool().full(queue_limit)


async def _in_hashing_thread(
    work: Callable[..., T], *args: object, queue_limit: int | None = None
) -> T:
    return await asyncio.wrap_future(_hashing_pool().submit(queue_limit, work, *args))


def fits_bcrypt(password: str) -> bool:
    """At most 72 bytes of UTF-8; a string that has no UTF-8 form (a lone surrogate) never fits."""
    try:
        return len(password.encode("utf-8")) <= BCRYPT_MAX_BYTES
    except UnicodeEncodeError:
        return False


def _hash_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def _verify_sync(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))


async def hash_password(password: str, *, rounds: int, queue_limit: int | None) -> str:
    """Hash a password that the caller has already checked fits bcrypt's 72-byte input.
    HashingBusy past `queue_limit` waiting hashes (None: the default, 4 x the threads)."""
    if not fits_bcrypt(password):
        raise ValueError("password is not at most 72 bytes of UTF-8")
    return await _in_hashing_thread(_hash_sync, password, rounds, queue_limit=queue_limit)


async def verify_password(password: str, password_hash: str, *, queue_limit: int | None) -> bool:
    """Constant-work check; a password bcrypt cannot take is simply wrong."""
    if not fits_bcrypt(password):
        password = ""
    return await _in_hashing_thread(_verify_sync, password, password_hash, queue_limit=queue_limit)


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return _hash_sync("taskhub-dummy-password", rounds)


def _verify_against_dummy_sync(password: str, rounds: int) -> None:
    _verify_sync(password if fits_bcrypt(password) else "", _dummy_hash(rounds))


async def verify_against_dummy(password: str, *, rounds: int, queue_limit: int | None) -> None:
    """Spend the same time as a real check when the username does not exist."""
    await _in_hashing_thread(_verify_against_dummy_sync, password, rounds, queue_limit=queue_limit)
