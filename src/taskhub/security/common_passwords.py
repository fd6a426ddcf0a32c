"""The 10,000 most common passwords, from the maintained zxcvbn frequency list."""

from __future__ import annotations

from functools import lru_cache

COMMON_PASSWORD_COUNT = 10_000


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # a large module: load it once, on demand

    ranked: list[str] = FREQUENCY_LISTS["passwords"][:COMMON_PASSWORD_COUNT]
    return frozenset(word.casefold() for word in ranked)


def is_common_password(password: str) -> bool:
    return password.casefold() in _common_passwords()


def preload() -> None:
    _common_passwords()
