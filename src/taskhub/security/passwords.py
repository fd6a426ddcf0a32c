"""bcrypt hashing, run in a bounded thread pool so a burst of logins cannot stall the event loop."""

from __future__ import annotations

import os
from functools import lru_cache

import anyio
import bcrypt

BCRYPT_MAX_BYTES = 72

# bcrypt is CPU-bound and releases the GIL; leaving one core free keeps reads flowing
# while logins queue (see docs/adr/0004-password-hashing.md).
_HASHING_SLOTS = max(1, (os.cpu_count() or 2) - 1)


@lru_cache(maxsize=1)
def _limiter() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(_HASHING_SLOTS)


def fits_bcrypt(password: str) -> bool:
    return len(password.encode("utf-8")) <= BCRYPT_MAX_BYTES


def _hash_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def _verify_sync(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))


async def hash_password(password: str, *, rounds: int) -> str:
    """Hash a password that the caller has already checked fits bcrypt's 72-byte input."""
    if not fits_bcrypt(password):
        raise ValueError("password longer than 72 bytes")
    return await anyio.to_thread.run_sync(_hash_sync, password, rounds, limiter=_limiter())


async def verify_password(password: str, password_hash: str) -> bool:
    """Constant-work check; a password bcrypt cannot take is simply wrong."""
    if not fits_bcrypt(password):
        password = ""
    return await anyio.to_thread.run_sync(_verify_sync, password, password_hash, limiter=_limiter())


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return _hash_sync("taskhub-dummy-password", rounds)


async def verify_against_dummy(password: str, *, rounds: int) -> None:
    """Spend the same time as a real check when the username does not exist."""
    dummy = await anyio.to_thread.run_sync(_dummy_hash, rounds, limiter=_limiter())
    await verify_password(password, dummy)
