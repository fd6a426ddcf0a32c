"""JWT access and refresh tokens: HS256 only, every claim required, the type pinned."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "exp", "iat", "jti", "sid", "type", "iss", "aud")
MAX_TOKEN_LENGTH = 4096
TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """The token is unusable. The reason is for logs, never for the client."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    session_id: uuid.UUID
    jti: str
    type: TokenType
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenCodec:
    secret: str
    issuer: str
    audience: str

    def encode(
        self,
        *,
        token_type: TokenType,
        subject: str,
        session_id: uuid.UUID,
        issued_at: datetime,
        expires_at: datetime,
    ) -> tuple[str, str]:
        """Return (token, jti)."""
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "sub": subject,
            "sid": str(session_id),
            "type": token_type,
            "jti": jti,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), jti

    def decode(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("malformed")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": list(REQUIRED_CLAIMS), "verify_iat": True},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(type(exc).__name__) from None
        return _claims_of(claims, expected_type)


def _claims_of(claims: dict[str, Any], expected_type: TokenType) -> TokenClaims:
    if claims["type"] != expected_type:
        raise InvalidToken("wrong type")
    subject, jti, sid = claims["sub"], claims["jti"], claims["sid"]
    if not (isinstance(subject, str) and isinstance(jti, str) and isinstance(sid, str)):
        raise InvalidToken("claim types")
    if "\x00" in subject:  # PostgreSQL refuses NUL in text: it must never reach a query
        raise InvalidToken("sub")
    try:
        session_id = uuid.UUID(sid)
    except ValueError:
        raise InvalidToken("sid") from None
    try:
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
    except (OverflowError, OSError, ValueError):  # an `exp` past year 9999 passes PyJWT's check
        raise InvalidToken("exp out of range") from None
    return TokenClaims(
        subject=subject, session_id=session_id, jti=jti, type=expected_type, expires_at=expires_at
    )


def fingerprint(jti: str) -> str:
    """What we store of a refresh token: a hash of its id, useless to whoever reads the table."""
    return hashlib.sha256(jti.encode()).hexdigest()
