"""signing.sign/unsign: tamper-evident opaque values; every bad input is BadSignature, nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from taskhub.security.signing import BadSignature, derive_key, sign, unsign

KEY = derive_key("unit-test-secret-with-more-than-thirty-two-bytes", "cursor")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(body: str, key: bytes = KEY) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


class TestRoundtrip:
    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"sort": "-created_at", "id": "6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"},
            {"nested": {"list": [1, 2.5, None, True]}, "text": "äσΣ€ 🎉"},
        ],
    )
    def test_unsign_gives_back_what_sign_signed(self, payload: dict[str, object]) -> None:
        assert unsign(sign(payload, KEY), KEY) == payload

    def test_signed_value_is_url_safe(self) -> None:
        value = sign({"q": "a/b+c=d?&"}, KEY)

        assert all(ch.isalnum() or ch in "-_." for ch in value)

    def test_signing_is_deterministic_whatever_the_key_order(self) -> None:
        assert sign({"a": 1, "b": 2}, KEY) == sign({"b": 2, "a": 1}, KEY)


class TestTampering:
    def test_tampered_body_is_bad_signature(self) -> None:
        _body, tag = sign({"offset": 1}, KEY).split(".")
        forged_body = _b64(b'{"offset":2}')

        with pytest.raises(BadSignature):
            unsign(f"{forged_body}.{tag}", KEY)

    def test_one_changed_character_in_body_is_bad_signature(self) -> None:
        body, tag = sign({"offset": 1}, KEY).split(".")
        changed = ("A" if body[0] != "A" else "B") + body[1:]

        with pytest.raises(BadSignature):
            unsign(f"{changed}.{tag}", KEY)

    def test_tampered_tag_is_bad_signature(self) -> None:
        body, tag = sign({"offset": 1}, KEY).split(".")
        changed = ("A" if tag[-1] != "A" else "B") + tag[:-1]

        with pytest.raises(BadSignature):
            unsign(f"{body}.{changed}", KEY)

    def test_truncated_tag_is_bad_signature(self) -> None:
        value = sign({"offset": 1}, KEY)

        with pytest.raises(BadSignature):
            unsign(value[:-2], KEY)

    def test_value_signed_with_a_different_key_is_bad_signature(self) -> None:
        other = derive_key("another-unit-test-secret-also-over-thirty-two-bytes", "cursor")

        with pytest.raises(BadSignature):
            unsign(sign({"offset": 1}, other), KEY)

    def test_value_signed_for_another_purpose_is_bad_signature(self) -> None:
        secret = "unit-test-secret-with-more-than-thirty-two-bytes"
        other_purpose = derive_key(secret, "something-else")

        assert other_purpose != KEY
        with pytest.raises(BadSignature):
            unsign(sign({"offset": 1}, other_purpose), KEY)

    @pytest.mark.parametrize(
        "value",
        [
            "",
            ".",
            "abc",
            "abc.",
            ".abc",
            "a.b.c",
            "!!!.???",
            "é.é",
            "abc.é",
            "é.abc",
            "abc.\x00",
            "\x00.\x00",
            "abc.\ud800",  # a lone surrogate, as a lax decoder might hand over
            "x" * 10_000,
            "eyJhIjoxfQ.eyJhIjoxfQ.extra",
        ],
    )
    def test_garbage_is_bad_signature(self, value: str) -> None:
        with pytest.raises(BadSignature):
            unsign(value, KEY)

    @pytest.mark.parametrize(
        "body",
        [
            _b64(b"[1, 2]"),  # JSON, but not an object
            _b64(b'"text"'),
            _b64(b"null"),
            _b64(b"not json"),
            _b64(b"\xff\xfe"),
            "%%%",  # not base64url
            "a",  # impossible base64 length
        ],
    )
    def test_correctly_tagged_body_that_is_not_a_json_object_is_bad_signature(
        self, body: str
    ) -> None:
        with pytest.raises(BadSignature):
            unsign(f"{body}.{_tag(body)}", KEY)


class TestDeriveKey:
    def test_derive_key_is_deterministic_and_32_bytes(self) -> None:
        first = derive_key("secret-" * 6, "cursor")

        assert first == derive_key("secret-" * 6, "cursor")
        assert len(first) == 32

    def test_derive_key_differs_by_secret_and_by_purpose(self) -> None:
        base = derive_key("secret-" * 6, "cursor")

        assert derive_key("secret-" * 6 + "x", "cursor") != base
        assert derive_key("secret-" * 6, "other") != base
