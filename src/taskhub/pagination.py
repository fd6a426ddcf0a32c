"""Keyset pagination in SQL: a page is a walk of an index from where the previous page ended,
its last row's sort key and id (`Position`). Cursors, which carry positions to clients and back,
are the HTTP layer's (`http/pages.py`); repositories take `after` and `limit` and return rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, tuple_


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page ended: its last row's sort key (None in a nullable column's
    segment of rows without one) and id."""

    key: Any
    last_id: uuid.UUID


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
