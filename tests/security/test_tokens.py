"""TokenCodec: HS256 only, every claim required, the type pinned; and the refresh-token fingerprint."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskhub.security.tokens import (
    MAX_TOKEN_LENGTH,
    REQUIRED_CLAIMS,
    InvalidToken,
    TokenCodec,
    fingerprint,
    key_id,
)
from tests.tokens import (
    SESSION_ID,
    b64url,
    claims_of,
    header_of,
    issue_token,
    json_segment,
    sign_token,
)

SECRET = "unit-test-secret-with-more-than-thirty-two-bytes"
OTHER_SECRET = "another-unit-test-secret-also-over-thirty-two-bytes"


def codec(**overrides: str) -> TokenCodec:
    values = {"secret": SECRET, "issuer": "taskhub", "audience": "taskhub", **overrides}
    return TokenCodec(**values)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def valid_claims(**changes: Any) -> dict[str, Any]:
    issued = int(now().timestamp())
    claims: dict[str, Any] = {
        "sub": "alice",
        "sid": str(SESSION_ID),
        "type": "access",
        "jti": "token-id",
        "iat": issued,
        "exp": issued + 900,
        "iss": "taskhub",
        "aud": "taskhub",
    }
    claims.update(changes)
    return claims


class TestEncodeDecodeRoundtrip:
    def test_access_token_roundtrip_gives_back_the_claims(self) -> None:
        issued = now()
        token, jti = codec().encode(
            token_type="access",
            subject="alice",
            session_id=SESSION_ID,
            issued_at=issued,
            expires_at=issued + timedelta(minutes=15),
        )

        claims = codec().decode(token, expected_type="access")

        assert claims.subject == "alice"
        assert claims.session_id == SESSION_ID
        assert claims.jti == jti
        assert claims.type == "access"
        assert claims.expires_at == issued + timedelta(minutes=15)
        assert claims.expires_at.tzinfo is not None

    def test_refresh_token_roundtrip(self) -> None:
        token, jti = issue_token(codec(), token_type="refresh", lifetime=timedelta(days=7))

        claims = codec().decode(token, expected_type="refresh")

        assert claims.type == "refresh"
        assert claims.jti == jti

    def test_encoded_token_is_hs256_with_every_required_claim(self) -> None:
        token, jti = issue_token(codec())

        header = header_of(token)
        payload = claims_of(token)
        assert header["alg"] == "HS256"
        assert set(payload) == set(REQUIRED_CLAIMS)
        assert payload["jti"] == jti
        assert payload["sid"] == str(SESSION_ID)
        assert payload["exp"] - payload["iat"] == 900

    def test_each_encode_gets_a_new_unguessable_jti(self) -> None:
        jtis = {issue_token(codec())[1] for _ in range(20)}

        assert len(jtis) == 20
        assert all(len(jti) >= 16 for jti in jtis)

    def test_hand_signed_valid_token_is_accepted(self) -> None:
        # The control for the forged-token cases below.
        claims = codec().decode(sign_token(valid_claims(), SECRET), expected_type="access")

        assert claims.subject == "alice"


class TestDecodeRejects:
    def test_wrong_type_is_rejected_both_ways(self) -> None:
        access, _ = issue_token(codec(), token_type="access")
        refresh, _ = issue_token(codec(), token_type="refresh")

        with pytest.raises(InvalidToken):
            codec().decode(access, expected_type="refresh")
        with pytest.raises(InvalidToken):
            codec().decode(refresh, expected_type="access")

    def test_token_signed_with_another_secret_is_rejected(self) -> None:
        token, _ = issue_token(codec(secret=OTHER_SECRET))

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_token_for_another_issuer_is_rejected(self) -> None:
        token, _ = issue_token(codec(issuer="someone-else"))

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_token_for_another_audience_is_rejected(self) -> None:
        token, _ = issue_token(codec(audience="someone-else"))

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_expired_token_is_rejected(self) -> None:
        token, _ = issue_token(codec(), lifetime=timedelta(seconds=-1))

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_token_issued_in_the_future_is_rejected(self) -> None:
        future = int(now().timestamp()) + 3600
        token = sign_token(valid_claims(iat=future, exp=future + 900), SECRET)

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    @pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
    def test_token_missing_a_required_claim_is_rejected(self, claim: str) -> None:
        claims = valid_claims()
        del claims[claim]

        with pytest.raises(InvalidToken):
            codec().decode(sign_token(claims, SECRET), expected_type="access")

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("sub", 42),
            ("sub", None),
            ("sub", "alice\x00"),
            ("jti", 42),
            ("jti", ["a"]),
            ("sid", "not-a-uuid"),
            ("sid", 42),
            ("sid", None),
            ("type", ["access"]),
            ("type", {"access": True}),
            ("iss", ["taskhub"]),
            ("iss", None),
            ("aud", 42),
            ("aud", [42]),
            ("exp", "soon"),
            ("exp", 10**30),
            ("exp", 1e300),
            ("exp", None),
            ("iat", "now"),
            ("iat", 10**30),
        ],
    )
    def test_token_with_malformed_claim_is_rejected(self, claim: str, value: object) -> None:
        token = sign_token(valid_claims(**{claim: value}), SECRET)

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_alg_none_is_rejected(self) -> None:
        head = json_segment({"alg": "none", "typ": "JWT"})
        token = f"{head}.{json_segment(valid_claims())}."

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    @pytest.mark.parametrize("alg", ["HS384", "HS512"])
    def test_other_hmac_algorithms_with_the_right_secret_are_rejected(self, alg: str) -> None:
        with pytest.raises(InvalidToken):
            codec().decode(sign_token(valid_claims(), SECRET, alg=alg), expected_type="access")

    @pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
    def test_asymmetric_algorithm_headers_are_rejected(self, alg: str) -> None:
        token = sign_token(
            valid_claims(), SECRET, header={"alg": alg, "typ": "JWT", "kid": key_id(SECRET)}
        )

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "garbage",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            "...",
            "é.é.é",
            "W10.e30.AAAA",
            "e30.W10.AAAA",
            "x" * (MAX_TOKEN_LENGTH + 1),
            b64url(b"[" * 3000) + ".e30.AAAA",
        ],
    )
    def test_garbage_is_rejected(self, token: str) -> None:
        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_over_long_token_is_rejected_even_if_validly_signed(self) -> None:
        token = sign_token(valid_claims(padding="p" * MAX_TOKEN_LENGTH), SECRET)

        with pytest.raises(InvalidToken):
            codec().decode(token, expected_type="access")

    def test_tampered_payload_is_rejected(self) -> None:
        token, _ = issue_token(codec())
        head, _payload, signature = token.split(".")
        forged = f"{head}.{json_segment(valid_claims(sub='bob'))}.{signature}"

        with pytest.raises(InvalidToken):
            codec().decode(forged, expected_type="access")

    def test_invalid_token_message_names_no_secret(self) -> None:
        token, _ = issue_token(codec(secret=OTHER_SECRET))

        with pytest.raises(InvalidToken) as caught:
            codec().decode(token, expected_type="access")

        assert SECRET not in str(caught.value)
        assert OTHER_SECRET not in str(caught.value)


class TestFingerprint:
    def test_fingerprint_is_sha256_hex_of_the_jti(self) -> None:
        value = fingerprint("some-jti")

        assert value == hashlib.sha256(b"some-jti").hexdigest()
        assert len(value) == 64
        assert all(ch in "0123456789abcdef" for ch in value)

    def test_fingerprint_is_deterministic_and_distinguishes_inputs(self) -> None:
        assert fingerprint("a") == fingerprint("a")
        assert fingerprint("a") != fingerprint("b")

    def test_fingerprint_does_not_contain_the_jti(self) -> None:
        jti = issue_token(codec())[1]

        assert jti not in fingerprint(jti)


def test_a_remembered_token_still_expires() -> None:
    """Verified tokens are cached for speed; the expiry is checked on every use regardless."""
    issued = datetime.now(UTC) - timedelta(seconds=5)
    token, _ = codec().encode(
        token_type="access",
        subject="alice",
        session_id=SESSION_ID,
        issued_at=issued,
        expires_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    claims = codec().decode(token, expected_type="access")
    time.sleep(max(0.0, (claims.expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    with pytest.raises(InvalidToken) as refused:
        codec().decode(token, expected_type="access")
    assert refused.value.reason == "expired"


def test_a_cached_token_is_not_accepted_under_another_secret() -> None:
    token, _ = issue_token(codec())
    codec().decode(token, expected_type="access")
    with pytest.raises(InvalidToken):
        codec(secret=OTHER_SECRET).decode(token, expected_type="access")
