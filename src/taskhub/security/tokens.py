"""JWT access and refresh tokens: HS256 only, every claim required, the type pinned.

Every token names its signing key in a `kid` header, so the secret can be rotated without
logging everyone out: the current secret signs, previous ones still verify until removed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "exp", "iat", "jti", "sid", "type", "iss", "aud")
MAX_TOKEN_LENGTH = 4096
TokenType = Literal["access", "refresh"]
KEY_ID_LABEL = b"taskhub-kid"
KEY_ID_HEX_CHARS = 16
# Why a token was refused: a fixed set, so it can label a metric (never shown to the client).
InvalidTokenReason = Literal[
    "malformed", "unknown_key", "bad_signature", "expired", "invalid_claims", "wrong_type"
]


class InvalidToken(Exception):
    """The token is unusable. The reason is for logs and metrics, never for the client."""

    def __init__(self, reason: InvalidTokenReason, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason: InvalidTokenReason = reason


@lru_cache(maxsize=16)
def key_id(secret: str) -> str:
    """The `kid` of a secret: an HMAC of a fixed label under it, which reveals nothing of it."""
    digest = hmac.new(secret.encode(), KEY_ID_LABEL, hashlib.sha256).hexdigest()
    return digest[:KEY_ID_HEX_CHARS]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    session_id: uuid.UUID
    jti: str
    type: TokenType
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenCodec:
    """`secret` signs; it and each of `previous_secrets` verify the tokens whose `kid` names it."""

    secret: str
    issuer: str
    audience: str
    previous_secrets: tuple[str, ...] = ()

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
        headers = {"kid": key_id(self.secret)}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM, headers=headers), jti

    def decode(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("malformed")
        claims = _verified(self, token, expected_type)
        # A verified token is remembered, but its expiry is checked on every use.
        if claims.expires_at <= datetime.now(UTC):
            raise InvalidToken("expired")
        return claims

    def _verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        secret = self._verifying_secret(token)
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": list(REQUIRED_CLAIMS), "verify_iat": True},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_reason_of(exc), type(exc).__name__) from None
        return _claims_of(claims, expected_type)

    def _verifying_secret(self, token: str) -> str:
        """The configured secret the token's `kid` names. A token without one is refused:
        every token has carried a kid since before the first deployment."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        # A kid is public (every token shows it), so a plain lookup leaks nothing.
        secrets_by_kid = {
            key_id(secret): secret for secret in (*self.previous_secrets, self.secret)
        }
        if not isinstance(kid, str) or kid not in secrets_by_kid:
            raise InvalidToken("unknown_key")
        return secrets_by_kid[kid]


# Verifying a signature and parsing claims is most of an authenticated request's CPU; a client
# sends the same access token many times. Only successes are cached (exceptions never are), the
# cache is bounded, and the key includes every secret, so a rotation starts afresh.
@lru_cache(maxsize=4096)
def _verified(codec: TokenCodec, token: str, expected_type: TokenType) -> TokenClaims:
    return codec._verify(token, expected_type)


def _reason_of(exc: jwt.InvalidTokenError) -> InvalidTokenReason:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad_signature"
    if isinstance(exc, jwt.DecodeError | jwt.InvalidAlgorithmError):
        return "malformed"
    return "invalid_claims"


def _claims_of(claims: dict[str, Any], expected_type: TokenType) -> TokenClaims:
    if claims["type"] != expected_type:
        known_type = claims["type"] in ("access", "refresh")
        raise InvalidToken("wrong_type" if known_type else "invalid_claims")
    subject, jti, sid = claims["sub"], claims["jti"], claims["sid"]
    if not (isinstance(subject, str) and isinstance(jti, str) and isinstance(sid, str)):
        raise InvalidToken("invalid_claims", "claim types")
    if "\x00" in subject:  # PostgreSQL refuses NUL in text: it must never reach a query
        raise InvalidToken("invalid_claims", "sub")
    try:
        session_id = uuid.UUID(sid)
    except ValueError:
        raise InvalidToken("invalid_claims", "sid") from None
    try:
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
    except (OverflowError, OSError, ValueError):  # an `exp` past year 9999 passes PyJWT's check
        raise InvalidToken("invalid_claims", "exp out of range") from None
    return TokenClaims(
        subject=subject, session_id=session_id, jti=jti, type=expected_type, expires_at=expires_at
    )


def fingerprint(jti: str) -> str:
    """What we store of a refresh token: a hash of its id, useless to whoever reads the table."""
    return hashlib.sha256(jti.encode()).hexdigest()
