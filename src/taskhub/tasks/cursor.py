"""Opaque keyset cursors, MACed and bound to the owner, sort and filters they were made for."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from taskhub.errors import ValidationFailed
from taskhub.security.signing import BadSignature, derive_key, sign, unsign
from taskhub.tasks.models import TaskPriority
from taskhub.tasks.repository import Position, SortOrder, TaskFilters

CURSOR_VERSION = 1
_PRIORITY_RANKS = frozenset(rank.value for rank in TaskPriority)
INVALID_CURSOR = (
    "is not a cursor of this listing (it was altered, or made for another sort or filter)"
)


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "task-cursor")

    def encode(self, position: Position, *, scope: str) -> str:
        key = position.key.isoformat() if isinstance(position.key, datetime) else position.key
        return sign(
            {"v": CURSOR_VERSION, "s": scope, "k": key, "i": str(position.task_id)}, self._key
        )

    def decode(self, cursor: str, *, scope: str, order: SortOrder) -> Position:
        try:
            payload = unsign(cursor, self._key)
            if payload.get("v") != CURSOR_VERSION or payload.get("s") != scope:
                raise BadSignature
            return Position(
                key=_key_of(payload.get("k"), order), task_id=uuid.UUID(str(payload["i"]))
            )
        except (BadSignature, KeyError, ValueError, TypeError):
            raise ValidationFailed(loc=["query", "cursor"], msg=INVALID_CURSOR) from None


def _key_of(raw: Any, order: SortOrder) -> Any:
    if raw is None:
        if not order.nullable:
            raise ValueError("missing key")
        return None
    if order.column == "priority":
        # bool is an int too; an out-of-range rank would overflow the SMALLINT column.
        if not isinstance(raw, int) or isinstance(raw, bool) or raw not in _PRIORITY_RANKS:
            raise TypeError("priority key")
        return raw
    if not isinstance(raw, str):
        raise TypeError("timestamp key")
    key = datetime.fromisoformat(raw)
    if key.tzinfo is None:  # a naive key would fail in the database, as a 500
        raise ValueError("naive timestamp key")
    return key


def listing_scope(*, owner_id: uuid.UUID, order: SortOrder, filters: TaskFilters) -> str:
    """A digest of everything that defines the listing; a cursor only fits the listing it came from."""
    description = {
        "owner": str(owner_id),
        "sort": [order.column, order.descending],
        "status": sorted(filters.statuses),
        "priority": sorted(filters.priorities),
        "due_before": _instant(filters.due_before),
        "due_after": _instant(filters.due_after),
        "q": filters.search,
    }
    return hashlib.sha256(orjson.dumps(description, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _instant(value: datetime | None) -> str | None:
    # The same bound spelled with another offset is the same listing.
    return value.astimezone(UTC).isoformat() if value is not None else None
