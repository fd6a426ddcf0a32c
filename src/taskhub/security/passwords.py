"""bcrypt hashing, run in a bounded thread pool so a burst of logins cannot stall the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

import bcrypt

BCRYPT_MAX_BYTES = 72

# bcrypt is CPU-bound and releases the GIL; leaving one core free keeps reads flowing
# while logins queue (see docs/adr/0004-password-hashing.md).
_HASHING_THREADS = max(1, (os.cpu_count() or 2) - 1)
# The hashing threads also yield the CPU to everything else, 10 steps nicer than the process: on
# a small machine the free core is shared with PostgreSQL, and reads kept 66 % of their
# throughput during a login burst at equal priority (docs/benchmarks.md).
HASHING_NICENESS = 10

T = TypeVar("T")


def _lower_thread_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: run as is
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, niceness)


@lru_cache(maxsize=1)
def _hashing_threads() -> ThreadPoolExecutor:
    """Its own threads, so only hashing runs at the lower priority; its queue is first come,
    first served."""
    return ThreadPoolExecutor(
        max_workers=_HASHING_THREADS,
        thread_name_prefix="bcrypt",
        initializer=_lower_thread_priority,
    )


async def _in_hashing_thread(work: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_threads(), work, *args)


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


async def hash_password(password: str, *, rounds: int) -> str:
    """Hash a password that the caller has already checked fits bcrypt's 72-byte input."""
    if not fits_bcrypt(password):
        raise ValueError("password is not at most 72 bytes of UTF-8")
    return await _in_hashing_thread(_hash_sync, password, rounds)


async def verify_password(password: str, password_hash: str) -> bool:
    """Constant-work check; a password bcrypt cannot take is simply wrong."""
    if not fits_bcrypt(password):
        password = ""
    return await _in_hashing_thread(_verify_sync, password, password_hash)


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return _hash_sync("taskhub-dummy-password", rounds)


async def verify_against_dummy(password: str, *, rounds: int) -> None:
    """Spend the same time as a real check when the username does not exist."""
    dummy = await _in_hashing_thread(_dummy_hash, rounds)
    await verify_password(password, dummy)
