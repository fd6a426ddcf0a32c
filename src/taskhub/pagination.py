"""The keyset-pagination toolkit every listing uses (tasks, notifications).

A page is a walk of an index from where the previous page ended: the last row's sort key and
id (`Position`). The cursor that carries it is opaque to clients: MACed, bound to one listing
(`listing_scope`), and its key is parsed back into the sort column's type before it reaches
SQL, so a forged or stale cursor is a 422, never a 500.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, bindparam, tuple_

from taskhub.errors import ValidationFailed
from taskhub.security.signing import BadSignature, derive_key, sign, unsign

CURSOR_VERSION = 1
INVALID_CURSOR = (
    "is not a cursor of this listing (it was altered, or made for another sort or filter)"
)
T = TypeVar("T")
KeyParser = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page ended: its last row's sort key (None in a nullable column's
    segment of rows without one) and id."""

    key: Any
    last_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class KeysetCursors:
    """Signs and checks cursors for one kind of listing (`purpose` keeps the keys apart)."""

    def __init__(self, secret: str, *, purpose: str) -> None:
        self._key = derive_key(secret, f"{purpose}-cursor")

    async def fetch_page(
        self,
        *,
        cursor: str | None,
        scope: str,
        parse_key: KeyParser,
        limit: int,
        fetch: Callable[[Position | None, int], Awaitable[Sequence[T]]],
        position_of: Callable[[T], Position],
    ) -> Page[T]:
        """One page of a listing: the cursor checked and decoded, `limit + 1` rows fetched after
        its position (one extra shows whether more follow), and the next page's cursor."""
        after = None if cursor is None else self.decode(cursor, scope=scope, parse_key=parse_key)
        rows = await fetch(after, limit + 1)
        return self.page(rows, limit=limit, scope=scope, position_of=position_of)

    def page(
        self,
        rows: Sequence[T],
        *,
        limit: int,
        scope: str,
        position_of: Callable[[T], Position],
    ) -> Page[T]:
        """The first `limit` of `rows` (fetched with one extra to see whether more follow), and
        the cursor of the next page when there is one."""
        items = list(rows[:limit])
        if len(rows) <= limit:
            return Page(items=items, next_cursor=None)
        return Page(items=items, next_cursor=self.encode(position_of(items[-1]), scope=scope))

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
            raise invalid_cursor() from None


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


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(loc=["query", "cursor"], msg=INVALID_CURSOR)


def listing_scope(description: dict[str, Any]) -> str:
    """A digest of everything that defines a listing; a cursor only fits the listing it came from."""
    encoded = orjson.dumps(description, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:32]


def instant(value: datetime | None) -> str | None:
    """A bound of a listing, as it goes into its scope: the same instant spelled with another
    offset is the same listing."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def beyond(sort_keys: Sequence[Any], *, descending: bool) -> ColumnElement[bool]:
    """Rows after the position in the walk's direction. The last sort key is the row id; the
    parameters are `after_key` (if there is a key before the id) and `after_id`, typed as their
    columns so that every backend binds them as it stores them."""
    *key, row_id = sort_keys
    after_id = bindparam("after_id", type_=row_id.type)
    if key:
        left: Any = tuple_(key[0], row_id)
        right: Any = tuple_(bindparam("after_key", type_=key[0].type), after_id)
    else:
        left, right = row_id, after_id
    return left < right if descending else left > right  # type: ignore[no-any-return]


def directed(sort_keys: Sequence[Any], *, descending: bool) -> list[Any]:
    return [key.desc() if descending else key.asc() for key in sort_keys]
