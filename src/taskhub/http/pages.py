"""What every listing route shares: its page size and cursor parameters, the signed-cursor codec
of its kind of listing, and its response body (`{"items", "next_cursor"}`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from fastapi import Query, Response

from taskhub.http.dependencies import SettingsDep
from taskhub.http.responses import json_response
from taskhub.pagination import KeysetCursors, Page

T = TypeVar("T")

PageLimit = Annotated[int, Query(ge=1, le=100)]
PageCursor = Annotated[str | None, Query(min_length=1, max_length=1024)]


def cursors_of(purpose: str) -> Callable[..., Awaitable[KeysetCursors]]:
    """A dependency giving the cursor codec of one kind of listing (its own key)."""

    async def cursors(settings: SettingsDep) -> KeysetCursors:
        return _cursors(settings.JWT_SECRET.get_secret_value(), purpose)

    return cursors


@lru_cache(maxsize=16)
def _cursors(secret: str, purpose: str) -> KeysetCursors:
    return KeysetCursors(secret, purpose=purpose)


def page_response(page: Page[T], render: Callable[[T], dict[str, Any]]) -> Response:
    return json_response(
        {"items": [render(item) for item in page.items], "next_cursor": page.next_cursor}
    )
