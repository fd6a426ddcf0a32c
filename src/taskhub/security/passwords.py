"""bcrypt hashing, run on the process's own threads behind a bounded queue, with a share of the
CPU: a burst of logins can neither stall the event loop nor pile up, and while the event loop is
busy serving, hashing leaves it part of a core. Nothing here touches a file, so nothing another
user of the machine does can affect it."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import bcrypt

from taskhub.errors import ServiceUnavailable

BCRYPT_MAX_BYTES = 72

_CORES = os.cpu_count() or 2
# bcrypt is CPU-bound and releases the GIL; leaving one core free keeps reads flowing while
# logins queue. Per process, with no coordination: production runs one worker per task, and
# several workers on one machine each have their own (docs/adr/0004-password-hashing.md).
_HASHING_THREADS = max(1, _CORES - 1)
# HASH_QUEUE_WAIT's default, for a process that never sized its queue (create_app does).
DEFAULT_QUEUE_WAIT = 1.0
# What a hash counts for until one is measured: bcrypt 12 on a current core.
UNMEASURED_HASH_SECONDS = 0.25
# The default queue's bound, however fast a hash measured (bcrypt 4 takes about a millisecond):
# each waiting hash is a request held open.
MAX_DEFAULT_QUEUE = 512

# A hashing thread's share of a core while the event loop is busy: hashing back to back starves
# a one-worker server's reads otherwise (ADR 0004 has the figures).
LOADED_SHARE = 0.6
# The event loop's use of a core, measured across a hash, below which it counts as idle and
# above which as busy (the share moves linearly in between).
LOOP_IDLE, LOOP_BUSY = 0.25, 0.75
# A rest never exceeds this, whatever the clocks said.
MAX_REST_SECONDS = 5.0

T = TypeVar("T")


class HashingBusy(ServiceUnavailable):
    """More password hashes are waiting than HASH_QUEUE_LIMIT allows: refused at once."""

    detail = "Too many password checks are waiting; retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def default_queue_limit(*, threads: int, wait: float, hash_seconds: float) -> int:
    """HASH_QUEUE_LIMIT's default, a wait budget: as many hashes may wait as `threads` start
    within `wait` seconds when each takes `hash_seconds` (at least one per thread, at most
    MAX_DEFAULT_QUEUE)."""
    per_thread = math.ceil(wait / max(hash_seconds, 1e-6))
    return max(threads, min(MAX_DEFAULT_QUEUE, threads * per_thread))


@lru_cache(maxsize=8)
def measured_hash_seconds(rounds: int) -> float:
    """CPU seconds one hash at `rounds` took here, timed once per process: CPU time, so that the
    size follows the cost and the core, not whatever else the machine ran at start-up."""
    began = time.thread_time()
    _hash_sync("taskhub-sizing-password", rounds)
    return time.thread_time() - began


def _loop_cpu_clock() -> Callable[[], float]:
    """The CPU time of the main thread, where the server runs its event loop (0 where the
    platform cannot tell: the loop then counts as idle)."""
    try:
        clock = time.pthread_getcpuclockid(threading.main_thread().ident or 0)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return lambda: 0.0
    return lambda: time.clock_gettime(clock)


@dataclass(frozen=True)
class Clocks:
    """What CpuShare reads and waits on; tests give clocks of their own."""

    wall: Callable[[], float] = time.monotonic
    thread_cpu: Callable[[], float] = time.thread_time
    loop_cpu: Callable[[], float] = field(default_factory=_loop_cpu_clock)
    sleep: Callable[[float], None] = time.sleep


class CpuShare:
    """How much CPU a hashing thread may use, and the rest that keeps it so.

    bcrypt cannot be paused halfway, so a thread keeps to its share on average: after a hash that
    used `cpu` seconds of CPU over `wall` seconds, it starts no new one for cpu / share - wall
    seconds. The answer to a hash is never delayed, only the thread's next hash.
    """

    def __init__(self, clocks: Clocks | None = None) -> None:
        self.clocks = clocks or Clocks()
        self._thread = threading.local()  # each hashing thread's next start

    @staticmethod
    def per_thread(loop_busy: float) -> float:
        """Cores a hashing thread may use on average while the loop uses `loop_busy` of one."""
        load = min(1.0, max(0.0, (loop_busy - LOOP_IDLE) / (LOOP_BUSY - LOOP_IDLE)))
        return 1 - (1 - LOADED_SHARE) * load

    @classmethod
    def rest(cls, *, cpu: float, wall: float, loop_busy: float) -> float:
        """Seconds before the thread's next hash."""
        return min(MAX_REST_SECONDS, max(0.0, cpu / cls.per_thread(loop_busy) - wall))

    def run(self, work: Callable[..., T], *args: object) -> T:
        """`work`, on the calling hashing thread, once its rest from its last hash is over; a
        hash that fails rests all the same."""
        clocks = self.clocks
        pause = getattr(self._thread, "next_start", 0.0) - clocks.wall()
        if pause > 0:
            clocks.sleep(min(pause, MAX_REST_SECONDS))
        began, cpu, loop = clocks.wall(), clocks.thread_cpu(), clocks.loop_cpu()
        try:
            return work(*args)
        finally:
            wall = max(clocks.wall() - began, 1e-6)
            loop_busy = (clocks.loop_cpu() - loop) / wall
            used = clocks.thread_cpu() - cpu
            rest = self.rest(cpu=used, wall=wall, loop_busy=loop_busy)
            self._thread.next_start = clocks.wall() + rest


class _HashingPool:
    """Its own threads, first come, first served, each keeping to its share of the CPU. Counts
    the hashes it holds (running or waiting) so the wait is bounded."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.share = CpuShare()
        self.default_limit = default_queue_limit(
            threads=threads, wait=DEFAULT_QUEUE_WAIT, hash_seconds=UNMEASURED_HASH_SECONDS
        )
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        self._lock = threading.Lock()  # the count is updated from the hashing threads too
        self._held = 0

    @property
    def waiting(self) -> int:
        """Hashes waiting for a thread."""
        return max(0, self._held - self.threads)

    def full(self, queue_limit: int | None) -> bool:
        """Whether `queue_limit` hashes (None: the default, `default_limit`) are waiting."""
        limit = self.default_limit if queue_limit is None else queue_limit
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


def size_hash_queue(
    *,
    rounds: int,
    wait: float,
    hash_seconds: Callable[[int], float] = measured_hash_seconds,
) -> int:
    """Set the queue's default length from the configured cost and HASH_QUEUE_WAIT (create_app
    calls it before serving, so the one hash it may time never runs on the event loop); returns
    it. `hash_seconds` says how long a hash at `rounds` takes (tests give a fixed one)."""
    pool = _hashing_pool()
    pool.default_limit = default_queue_limit(
        threads=pool.threads, wait=wait, hash_seconds=hash_seconds(rounds)
    )
    return pool.default_limit


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
    HashingBusy past `queue_limit` waiting hashes (None: the default, size_hash_queue's)."""
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
