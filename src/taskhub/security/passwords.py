"""bcrypt hashing, run on the process's own threads behind a bounded queue: a burst of logins can
neither stall the event loop nor pile up. Nothing here touches a file, so nothing another user of
the machine does can affect it."""

from __future__ import annotations

import asyncio
import math
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
    """CPU seconds one hash at `rounds` took here, timed once per process. CPU time, not wall
    time: the size then follows the cost and the core, not whatever else the machine ran at
    start-up (timed by the wall clock on a busy machine, bcrypt 12 measured over 0.5 s and the
    bench's 4 login connections got 503s)."""
    began = time.thread_time()
    _hash_sync("taskhub-sizing-password", rounds)
    return time.thread_time() - began


class _HashingPool:
    """Its own threads, first come, first served. Counts the hashes it holds (running or waiting)
    so the wait is bounded."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
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
        future = self._executor.submit(work, *args)
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
