"""bcrypt hashing, run on its own threads behind a bounded queue: a burst of logins cannot stall
the event loop, and past the bound it is refused at once instead of piling up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

import bcrypt

from taskhub.errors import ServiceUnavailable

BCRYPT_MAX_BYTES = 72

# bcrypt is CPU-bound and releases the GIL; leaving one core free keeps reads flowing
# while logins queue (see docs/adr/0004-password-hashing.md).
_HASHING_THREADS = max(1, (os.cpu_count() or 2) - 1)
# The hashing threads also yield the CPU to everything else, 10 steps nicer than the process: on
# a small machine the free core is shared with PostgreSQL, and reads kept 66 % of their
# throughput during a login burst at equal priority (docs/benchmarks.md).
HASHING_NICENESS = 10
# HASH_QUEUE_LIMIT's default: hashes that may wait for a thread, per hashing thread. At bcrypt
# 12 (~0.25 s a hash) the last of them starts within about a second.
QUEUE_PER_THREAD = 4

T = TypeVar("T")


class HashingBusy(ServiceUnavailable):
    """More password hashes are waiting than HASH_QUEUE_LIMIT allows: refused at once."""

    detail = "Too many password checks are waiting; retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def _lower_thread_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: run as is
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, niceness)


class _HashingPool:
    """Its own threads, so only hashing runs at the lower priority; first come, first served.
    Counts the hashes it holds (running or waiting) so the wait is bounded."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bcrypt", initializer=_lower_thread_priority
        )
        self._lock = threading.Lock()  # the count is updated from the hashing threads too
        self._held = 0

    @property
    def waiting(self) -> int:
        """Hashes waiting for a thread."""
        return max(0, self._held - self.threads)

    def submit(self, queue_limit: int | None, work: Callable[..., T], *args: object) -> Future[T]:
        """Run `work` on a hashing thread; HashingBusy, at once, if `queue_limit` hashes (default
        QUEUE_PER_THREAD x the threads) are already waiting for one."""
        limit = QUEUE_PER_THREAD * self.threads if queue_limit is None else queue_limit
        with self._lock:
            if self._held >= self.threads + limit:
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


async def _in_hashing_thread(
    work: Callable[..., T], *args: object, queue_limit: int | None = None
) -> T:
    return await asyncio.wrap_future(_hashing_pool().submit(queue_limit, work, *args))


def fits_bcrypt(password: str) -> bool:
    return len(password.encode("utf-8")) <= BCRYPT_MAX_BYTES


def _hash_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def _verify_sync(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))


async def hash_password(password: str, *, rounds: int, queue_limit: int | None) -> str:
    """Hash a password that the caller has already checked fits bcrypt's 72-byte input.
    HashingBusy past `queue_limit` waiting hashes (None: the default, 4 x the threads)."""
    if not fits_bcrypt(password):
        raise ValueError("password longer than 72 bytes")
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
