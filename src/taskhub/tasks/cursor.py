"""Task cursors: the shared keyset cursor, with its key typed by the listing's sort."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskhub import pagination
from taskhub.pagination import KeysetCursors, invalid_cursor
from taskhub.tasks.models import TaskPriority
from taskhub.tasks.repository import Position, SortOrder, TaskFilters

_PRIORITY_RANKS = frozenset(rank.value for rank in TaskPriority)


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._cursors = KeysetCursors(secret, purpose="task")

    def encode(self, position: Position, *, scope: str) -> str:
        key = position.key.isoformat() if isinstance(position.key, datetime) else position.key
        return self._cursors.encode(key=key, last_id=position.task_id, scope=scope)

    def decode(self, cursor: str, *, scope: str, order: SortOrder) -> Position:
        """The position a cursor carries; 422 if it was altered or belongs to another listing."""
        raw_key, last_id = self._cursors.decode(cursor, scope=scope)
        try:
            return Position(key=_key_of(raw_key, order), task_id=last_id)
        except (ValueError, TypeError):
            raise invalid_cursor() from None


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


def listing_scope(*, owner_id: UUID, order: SortOrder, filters: TaskFilters) -> str:
    """Everything that defines the listing; a cursor only fits the listing it came from."""
    return pagination.listing_scope(
        {
            "owner": str(owner_id),
            "sort": [order.column, order.descending],
            "status": sorted(filters.statuses),
            "priority": sorted(filters.priorities),
            "due_before": _instant(filters.due_before),
            "due_after": _instant(filters.due_after),
            "q": filters.search,
        }
    )


def _instant(value: datetime | None) -> str | None:
    # The same bound spelled with another offset is the same listing.
    return value.astimezone(UTC).isoformat() if value is not None else None
