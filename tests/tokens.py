"""JWT helpers the tests share: read a token's claims and header without verifying it, sign claims
by hand (any algorithm, any header, no library checks in the way), forge a variant of a real
token, and issue one through the app's own encoder.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from taskhub.config import Settings
from taskhub.security.tokens import TokenCodec, TokenType, key_id

HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
SESSION_ID = uuid.UUID("6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f")


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, unverified."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def sid_of(token: str) -> str:
    """The id of the session the token belongs to (its `sid` claim), unverified."""
    return str(claims_of(token)["sid"])


def header_of(token: str) -> dict[str, Any]:
    """The token's header, unverified."""
    return jwt.get_unverified_header(token)


def app_secret(settings: Settings) -> str:
    return settings.JWT_SECRET.get_secret_value()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def json_segment(value: object) -> str:
    """One dot-separated part of a JWT: compact JSON, base64url without padding."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign_token(
    claims: dict[str, Any], key: str, *, alg: str = "HS256", header: dict[str, Any] | None = None
) -> str:
    """A JWT signed by hand with HMAC-`alg` under `key`. The header names the key's `kid`
    unless given: `header` goes out as it is, whatever its own `alg` says."""
    default_header = {"alg": alg, "typ": "JWT", "kid": key_id(key)}
    head = json_segment(header if header is not None else default_header)
    signing_input = f"{head}.{json_segment(claims)}".encode()
    digest = hmac.new(key.encode(), signing_input, HMAC_HASHES[alg]).digest()
    return f"{signing_input.decode()}.{b64url(digest)}"


def forge_token(
    settings: Settings,
    base: str,
    *,
    key: str | None = None,
    without: Collection[str] = (),
    **changes: Any,
) -> str:
    """The claims of the real token `base`, with `changes` made and the claims named in
    `without` removed, signed with `key` (the app's own secret by default) under a header that
    names the app's key, as only the server could sign them."""
    claims = {name: value for name, value in claims_of(base).items() if name not in without}
    claims.update(changes)
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id(app_secret(settings))}
    return sign_token(claims, key if key is not None else app_secret(settings), header=header)


def issue_token(
    codec: TokenCodec,
    *,
    token_type: TokenType = "access",  # noqa: S107 - a claim value, not a password
    subject: str = "alice",
    session_id: uuid.UUID = SESSION_ID,
    issued_at: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=15),
) -> tuple[str, str]:
    """(token, jti) from the app's own encoder, issued `issued_at` (now by default)."""
    issued = issued_at if issued_at is not None else datetime.now(UTC)
    return codec.encode(
        token_type=token_type,
        subject=subject,
        session_id=session_id,
        issued_at=issued,
        expires_at=issued + lifetime,
    )
