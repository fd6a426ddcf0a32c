"""bcrypt hashing, run on its own threads behind a bounded queue, with a share of the CPU: a burst
of logins can neither stall the event loop nor pile up, and a flood of reads cannot starve it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
# Hashing's share of the CPU (ADR 0004). All the worker processes of a machine together hash on
# at most cores - 1 cores' worth of CPU time; while a process's event loop is busy serving,
# its hashing keeps a loaded share of its part and serving gets the rest. The hashing threads
# run at the process's own priority, so that share is theirs even when reads saturate every core
# (10 steps nicer, they got a few % of a core there and logins timed out), and rest between
# hashes to keep to it. The share is smaller when every core runs a worker's event loop: then
# each hash is taken from a loop, where with fewer workers than cores it runs beside them
# (measured in docs/benchmarks.md, run 7: with 0.55 on two workers over two cores, saturating
# reads kept 44-61 % during logins; with 0.35, 72 %, logins keeping 68 % of their rate).
LOADED_SHARE = 0.55
LOADED_SHARE_EVERY_CORE = 0.35
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


def _loop_cpu_clock() -> Callable[[], float]:
    """The CPU time of the main thread, where the server runs its event loop (0 where the
    platform cannot tell: the loop then counts as idle)."""
    try:
        clock = time.pthread_getcpuclockid(threading.main_thread().ident or 0)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return lambda: 0.0
    return lambda: time.clock_gettime(clock)


class CpuShare:
    """How much CPU each hashing thread of this process may use, and the rest that keeps it so.

    bcrypt cannot be paused halfway, so a thread keeps to its share on average: after a hash
    that used `cpu` seconds of CPU over `wall` seconds, it takes no new one for
    cpu / share - wall seconds. The answer to a hash is never delayed, only the next hash.
    """

    def __init__(self, *, cores: int, threads: int, workers: int = 1) -> None:
        self.cores, self.threads, self.workers = cores, threads, workers
        self._loop_cpu = _loop_cpu_clock()
        self._next_start = threading.local()

    def per_thread(self, loop_busy: float) -> float:
        """Cores a hashing thread may use on average while the event loop uses `loop_busy` of
        one."""
        alone = min(1.0, max(1, self.cores - 1) / self.workers / self.threads)
        load = min(1.0, max(0.0, (loop_busy - LOOP_IDLE) / (LOOP_BUSY - LOOP_IDLE)))
        return alone * (1 - (1 - self.loaded_share) * load)

    @property
    def loaded_share(self) -> float:
        """What a busy event loop leaves its hashing of its part."""
        return LOADED_SHARE_EVERY_CORE if self.workers >= self.cores else LOADED_SHARE

    def rest(self, *, cpu: float, wall: float, loop_busy: float) -> float:
        """Seconds before this thread's next hash."""
        return min(MAX_REST_SECONDS, max(0.0, cpu / self.per_thread(loop_busy) - wall))

    def run(self, work: Callable[..., T], *args: object) -> T:
        """`work`, on the calling hashing thread, once its rest from the last one is over."""
        pause = getattr(self._next_start, "at", 0.0) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        began, cpu, loop = time.monotonic(), time.thread_time(), self._loop_cpu()
        try:
            return work(*args)
        finally:
            wall = max(time.monotonic() - began, 1e-6)
            loop_busy = (self._loop_cpu() - loop) / wall
            used = time.thread_time() - cpu
            self._next_start.at = time.monotonic() + self.rest(
                cpu=used, wall=wall, loop_busy=loop_busy
            )


class _HashingPool:
    """Its own threads, first come, first served, each keeping to its share of the CPU. Counts
    the hashes it holds (running or waiting) so the wait is bounded."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.share = CpuShare(cores=_CORES, threads=threads)
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


def share_cpu_between(workers: int) -> None:
    """Told by the app how many worker processes (WEB_CONCURRENCY) share this machine's cores."""
    _hashing_pool().share.workers = workers


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
