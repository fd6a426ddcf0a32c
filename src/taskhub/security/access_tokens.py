"""Personal access tokens as strings: made, checked for their form, and hashed for storage.

`thp_` + 32 characters of base62 randomness (190 bits) + 6 characters of base62 checksum (the
CRC32 of the random part), so a secret scanner recognises a leaked token by its form and a
typo'd or made-up one is refused before any database work. The database keeps an HMAC-SHA256 of
the whole token: a 190-bit random secret needs no slow hash (nobody can guess one to test it),
only a hash that the table's reader cannot turn back into the token (ADR 0016).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from functools import lru_cache

PREFIX = "thp_"
RANDOM_CHARS = 32
CHECKSUM_CHARS = 6
LAST_SHOWN = 4
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FORM = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}")
_HASH_LABEL = b"taskhub-access-token"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_CHARS)


def new_token() -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_CHARS))
    return PREFIX + random_part + _checksum(random_part)


def is_token_like(credential: str) -> bool:
    """Whether a bearer credential is meant as a personal access token (not a JWT): it starts
    with the prefix, in any case; whether it is well formed is `well_formed`'s question."""
    return credential[: len(PREFIX)].lower() == PREFIX


def well_formed(token: str) -> bool:
    """The exact form, and a checksum that matches: what no database lookup is made without."""
    if not _FORM.fullmatch(token):
        return False
    random_part = token[len(PREFIX) : len(PREFIX) + RANDOM_CHARS]
    return hmac.compare_digest(token[-CHECKSUM_CHARS:], _checksum(random_part))


def last_shown(token: str) -> str:
    """What lists show of a token, so its owner can tell them apart."""
    return token[-LAST_SHOWN:]


@lru_cache(maxsize=16)
def hash_key(secret: str) -> bytes:
    """The key tokens are hashed under, derived from a configured secret (JWT_SECRET)."""
    return hmac.new(secret.encode(), _HASH_LABEL, hashlib.sha256).digest()


def token_hash(token: str, key: bytes) -> str:
    return hmac.new(key, token.encode("ascii"), hashlib.sha256).hexdigest()
