"""Entity tags: a resource's version as a strong validator (`ETag`), and `If-Match` read back.

Tasks and projects carry a version bumped by every change; their ETag is that number quoted. A
write sent with `If-Match` happens only while the resource is still at a version it names (412
otherwise); `*` names any version.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

from fastapi import Header

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description="an ETag from a read (or *): the write happens only while it is current (412)",
    ),
]
ANY = "*"


def etag(version: int) -> str:
    return f'"{version}"'


def tags(header: str | None) -> list[str] | None:
    """The entity tags an `If-Match` header names; None when it was not sent."""
    return None if header is None else [tag.strip() for tag in header.split(",") if tag.strip()]


def versions_named(named: Collection[str]) -> frozenset[int]:
    """The versions a list of tags names, compared as strong validators: `"7"` names 7, while
    `W/"7"`, `"07"` or a tag that is no version of ours names none."""
    versions = set()
    for tag in named:
        digits = tag[1:-1] if len(tag) > 2 and tag[0] == tag[-1] == '"' else ""
        if (
            digits.isascii()
            and digits.isdigit()
            and len(digits) < 10
            and str(int(digits)) == digits
        ):
            versions.add(int(digits))
    return frozenset(versions)


def names(named: Collection[str], version: int) -> bool:
    """Whether `If-Match`'s tags name this version (`*` names any)."""
    return ANY in named or version in versions_named(named)
