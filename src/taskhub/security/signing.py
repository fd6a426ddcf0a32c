"""Tamper-evident opaque values (pagination cursors): base64url JSON plus an HMAC-SHA256 tag."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson


class BadSignature(Exception):
    """The value was altered, truncated or made with another key."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A key per purpose, so a cursor can never be replayed as something else."""
    return hmac.new(secret.encode(), f"taskhub:{purpose}".encode(), hashlib.sha256).digest()


def sign(payload: dict[str, Any], key: bytes) -> str:
    body = _b64encode(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    tag = _b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{tag}"


def unsign(value: str, key: bytes) -> dict[str, Any]:
    body, sep, tag = value.partition(".")
    # A signed value is pure ASCII; anything else would also make compare_digest raise TypeError.
    if not sep or not body or not tag or not value.isascii():
        raise BadSignature
    expected = _b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, tag):
        raise BadSignature
    try:
        payload = orjson.loads(_b64decode(body))
    except (ValueError, binascii.Error):
        raise BadSignature from None
    if not isinstance(payload, dict):
        raise BadSignature
    return payload


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
