"""Opaque keyset cursors: the last row's sort key and id, MACed and bound to one listing."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from taskhub.errors import ValidationFailed
from taskhub.security.signing import BadSignature, derive_key, sign, unsign

CURSOR_VERSION = 1
INVALID_CURSOR = (
    "is not a cursor of this listing (it was altered, or made for another sort or filter)"
)

CursorKey = str | int | None


class KeysetCursors:
    """Signs and checks cursors for one kind of listing (`purpose` keeps the keys apart)."""

    def __init__(self, secret: str, *, purpose: str) -> None:
        self._key = derive_key(secret, f"{purpose}-cursor")

    def encode(self, *, key: CursorKey, last_id: uuid.UUID, scope: str) -> str:
        return sign({"v": CURSOR_VERSION, "s": scope, "k": key, "i": str(last_id)}, self._key)

    def decode(self, cursor: str, *, scope: str) -> tuple[CursorKey, uuid.UUID]:
        """The (key, id) the cursor carries; 422 if it was altered or belongs to another listing."""
        try:
            payload = unsign(cursor, self._key)
            if payload.get("v") != CURSOR_VERSION or payload.get("s") != scope:
                raise BadSignature
            key = payload.get("k")
            if not (key is None or isinstance(key, str | int)):
                raise BadSignature
            return key, uuid.UUID(str(payload["i"]))
        except (BadSignature, KeyError, ValueError):
            raise invalid_cursor() from None


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(loc=["query", "cursor"], msg=INVALID_CURSOR)


def listing_scope(description: dict[str, Any]) -> str:
    """A digest of everything that defines a listing; a cursor only fits the listing it came from."""
    encoded = orjson.dumps(description, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:32]
