"""Listings at the edge: every listing route reads its page size and cursor here, decodes the
cursor into a position bound to what defines the listing (its kind, the caller, the filters and
the sort), and encodes the next one from the rows the service returns. Services and
repositories see only `after` and `limit`.

A cursor is opaque to clients: MACed with a key of its kind of listing, bound to one listing (a
digest of what defines it), and its key is parsed back into the sort column's type before it
reaches SQL, so a forged, stale or foreign cursor is a 422, never a 500.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Query, Response

from taskhub.errors import ValidationFailed
from taskhub.http.dependencies import SettingsDep
from taskhub.http.responses import json_response
from taskhub.pagination import Position
from taskhub.security.signing import BadSignature, derive_key, sign, unsign

CURSOR_VERSION = 1
INVALID_CURSOR = (
    "is not a cursor of this listing (it was altered, or made for another sort or filter)"
)
T = TypeVar("T")
KeyParser = Callable[[Any], Any]

PageLimit = Annotated[int, Query(ge=1, le=100)]
PageCursor = Annotated[str | None, Query(min_length=1, max_length=1024)]


def timestamp_key(*, nullable: bool = False) -> KeyParser:
    def parse(raw: Any) -> datetime | None:
        if raw is None and nullable:
            return None
        if not isinstance(raw, str):
            raise TypeError("timestamp key")
        key = datetime.fromisoformat(raw)
        if key.tzinfo is None:  # a naive key would fail in the database, as a 500
            raise ValueError("naive timestamp key")
        return key

    return parse


def rank_key(allowed: frozenset[int]) -> KeyParser:
    def parse(raw: Any) -> int:
        # bool is an int too; an out-of-range rank would overflow a SMALLINT column.
        if not isinstance(raw, int) or isinstance(raw, bool) or raw not in allowed:
            raise TypeError("rank key")
        return raw

    return parse


CREATED_AT = timestamp_key()


def instant(value: datetime | None) -> str | None:
    """A bound of a listing, as it goes into what defines it: the same instant spelled with
    another offset is the same listing."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def listing_scope(description: dict[str, Any]) -> str:
    """A digest of everything that defines a listing; a cursor only fits the listing it came from."""
    encoded = orjson.dumps(description, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:32]


class KeysetCursors:
    """Signs and checks cursors for one kind of listing (`purpose` keeps the keys apart)."""

    def __init__(self, secret: str, *, purpose: str) -> None:
        self._key = derive_key(secret, f"{purpose}-cursor")

    def encode(self, position: Position, *, scope: str) -> str:
        key = position.key
        if isinstance(key, datetime):
            key = key.isoformat()
        payload = {"v": CURSOR_VERSION, "s": scope, "k": key, "i": str(position.last_id)}
        return sign(payload, self._key)

    def decode(self, cursor: str, *, scope: str, parse_key: KeyParser) -> Position:
        """The position a cursor carries; 422 if it was altered or belongs to another listing."""
        try:
            payload = unsign(cursor, self._key)
            if payload.get("v") != CURSOR_VERSION or payload.get("s") != scope:
                raise BadSignature
            return Position(key=parse_key(payload.get("k")), last_id=uuid.UUID(str(payload["i"])))
        except (BadSignature, KeyError, ValueError, TypeError, OverflowError):
            raise ValidationFailed(loc=["query", "cursor"], msg=INVALID_CURSOR) from None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page asked for: start `after` this position (None: from the start) and fetch
    `limit` rows, the page's size and one more to see whether more follow."""

    after: Position | None
    limit: int
    _size: int
    _scope: str
    _cursors: KeysetCursors

    def response(
        self, rows: Sequence[T], render: Callable[[T], dict[str, Any]], *, key: str = "created_at"
    ) -> Response:
        """`{"items", "next_cursor"}`: the page's rows rendered, and the cursor of the next page
        (at the last row's `key` and id) when there is one."""
        items = rows[: self._size]
        next_cursor = None
        if len(rows) > self._size:
            last = items[-1]
            position = Position(key=getattr(last, key), last_id=getattr(last, "id"))  # noqa: B009
            next_cursor = self._cursors.encode(position, scope=self._scope)
        return json_response(
            {"items": [render(item) for item in items], "next_cursor": next_cursor}
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing route's page size and cursor, as sent; `page` binds them to the listing."""

    size: int
    cursor: str | None
    cursors: KeysetCursors

    def page(self, *, bound_to: dict[str, Any], key: KeyParser = CREATED_AT) -> PageRequest:
        """The page asked for, in the listing that `bound_to` defines (with the caller): a cursor
        of any other listing is a 422. `key` parses the cursor's sort key back into its type."""
        scope = listing_scope(bound_to)
        after = None
        if self.cursor is not None:
            after = self.cursors.decode(self.cursor, scope=scope, parse_key=key)
        return PageRequest(after, self.size + 1, self.size, scope, self.cursors)


def listing(purpose: str) -> Callable[..., Awaitable[Listing]]:
    """The dependency of one kind of listing's routes: its page size and cursor parameters, and
    its cursors' own key (`purpose`)."""

    async def read(
        settings: SettingsDep, limit: PageLimit = 20, cursor: PageCursor = None
    ) -> Listing:
        return Listing(limit, cursor, _cursors(settings.JWT_SECRET.get_secret_value(), purpose))

    return read


@lru_cache(maxsize=16)
def _cursors(secret: str, purpose: str) -> KeysetCursors:
    return KeysetCursors(secret, purpose=purpose)
