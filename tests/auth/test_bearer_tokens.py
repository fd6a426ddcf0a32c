"""The bearer-token check on protected routes: the attack matrix. Every failure is a 401, never 500."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from taskhub.config import Settings
from taskhub.security.tokens import key_id
from tests.helpers import API, ApiUser, assert_problem, login, make_user, register
from tests.tokens import app_secret, b64url, claims_of, forge_token, json_segment, sign_token

ME = f"{API}/users/me"
INVALID_TOKEN = 'Bearer error="invalid_token"'
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256-0123456789"


async def get_me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers={"Authorization": f"Bearer {token}"})


def assert_rejected_token(response: httpx.Response) -> None:
    """401 problem with the RFC 6750 invalid_token challenge, and nothing about why."""
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == INVALID_TOKEN
    assert "Traceback" not in response.text
    assert set(body) <= {"type", "title", "status", "detail"}


class TestMissingOrMalformedHeader:
    # A missing header (401, plain `Bearer` challenge) is checked on every protected route by
    # tests/security/test_authorization_matrix.py.
    @pytest.mark.parametrize(
        "header",
        [
            "Bearer garbage",
            "Bearer " + "A" * 10_240,
            "Bearer a b",
            "Bearer Bearer x",
            "Bearer a.b.c",
            "Bearer ...",
            "Bearer eyJhbGciOiJIUzI1NiJ9",
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30",
            "Bearer W10.e30.AAAA",
            "Bearer " + "x." * 3000,
            "Bearer",
            "Bearer ",
            "Bearer  token-after-two-spaces",
        ],
    )
    async def test_garbage_bearer_header_gives_401_invalid_token(
        self, client: httpx.AsyncClient, header: str
    ) -> None:
        assert_rejected_token(await client.get(ME, headers={"Authorization": header}))

    async def test_ten_kilobytes_of_garbage_after_a_real_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        header = f"Bearer {alice.access_token}{'Z' * 10_240}"

        assert_rejected_token(await client.get(ME, headers={"Authorization": header}))

    @pytest.mark.parametrize(
        "raw",
        [b"Bearer \xff\xfe", b"Bearer abc\x80def", b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer a\xa0b"],
    )
    async def test_non_ascii_bytes_in_authorization_header_give_401(
        self, client: httpx.AsyncClient, raw: bytes
    ) -> None:
        response = await client.get(ME, headers=[(b"Authorization", raw)])

        assert_rejected_token(response)

    async def test_real_token_followed_by_a_second_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        header = f"Bearer {alice.access_token} {alice.access_token}"

        assert_rejected_token(await client.get(ME, headers={"Authorization": header}))

    async def test_bearer_repeated_before_a_real_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        header = f"Bearer Bearer {alice.access_token}"

        assert_rejected_token(await client.get(ME, headers={"Authorization": header}))

    @pytest.mark.parametrize(
        "header", ["Basic YWxpY2U6cGx1bS1rZXR0bGUtb3JiaXQtNDI=", "Token abc", "Digest x=1", "x"]
    )
    async def test_other_authorization_scheme_gives_401_plain_bearer_challenge(
        self, client: httpx.AsyncClient, header: str
    ) -> None:
        # RFC 6750 3.1: a request that used another scheme gets the challenge without an error code.
        response = await client.get(ME, headers={"Authorization": header})

        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_bearer_scheme_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        response = await client.get(ME, headers={"Authorization": f"bearer {alice.access_token}"})

        assert response.status_code == 200

    async def test_valid_token_is_accepted(self, client: httpx.AsyncClient, alice: ApiUser) -> None:
        response = await get_me(client, alice.access_token)

        assert response.status_code == 200
        assert response.json()["username"] == "alice"


class TestForgedAlgorithms:
    async def test_alg_none_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        claims = claims_of(alice.access_token)
        for alg in ("none", "None", "NONE"):
            head = json_segment({"alg": alg, "typ": "JWT"})
            for token in (f"{head}.{json_segment(claims)}.", f"{head}.{json_segment(claims)}"):
                assert_rejected_token(await get_me(client, token))

    @pytest.mark.parametrize("alg", ["HS384", "HS512"])
    async def test_other_hmac_algorithm_signed_with_the_right_secret_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings, alg: str
    ) -> None:
        token = sign_token(claims_of(alice.access_token), app_secret(settings), alg=alg)

        assert_rejected_token(await get_me(client, token))

    async def test_rs256_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        # `cryptography` is not installed, so the RS256 token carries a made-up signature;
        # the point is that the verifier refuses the algorithm before looking at it.
        head = json_segment({"alg": "RS256", "typ": "JWT"})
        body = json_segment(claims_of(alice.access_token))
        fake_signature = b64url(bytes(range(256)))

        assert_rejected_token(await get_me(client, f"{head}.{body}.{fake_signature}"))

    async def test_rs256_header_with_hmac_signature_over_the_secret_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        # The classic key-confusion attack: claim RS256 but sign with HMAC.
        token = sign_token(
            claims_of(alice.access_token),
            app_secret(settings),
            header={"alg": "RS256", "typ": "JWT", "kid": key_id(app_secret(settings))},
        )

        assert_rejected_token(await get_me(client, token))

    @pytest.mark.parametrize(
        "header",
        [
            {"typ": "JWT"},
            {"alg": 256},
            {"alg": ["HS256"]},
            {"alg": "HS256", "crit": ["exp"]},
            {"alg": "HS256", "crit": 5},
            {"alg": "HS256", "b64": False, "crit": ["b64"]},
            {"alg": "HS256", "kid": "../../etc/passwd"},
            {"alg": "HS256", "kid": 7},
            {"alg": "HS256", "kid": None},
        ],
    )
    async def test_odd_headers_signed_with_the_right_secret_give_401_not_500(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings, header: dict[str, Any]
    ) -> None:
        # The right kid unless the case is about the kid, so the oddity is what gets refused.
        header = {"kid": key_id(app_secret(settings)), **header}
        token = sign_token(claims_of(alice.access_token), app_secret(settings), header=header)

        assert_rejected_token(await get_me(client, token))

    async def test_deeply_nested_header_gives_401(self, client: httpx.AsyncClient) -> None:
        head = b64url(b"[" * 2000 + b"]" * 2000)

        assert_rejected_token(await get_me(client, f"{head[:3000]}.e30.AAAA"))


class TestForgedClaims:
    async def test_token_signed_with_wrong_secret_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        # Naming the app's key: the signature is what gives it away.
        token = forge_token(settings, alice.access_token, key=OTHER_SECRET)

        assert_rejected_token(await get_me(client, token))

    async def test_expired_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        now = int(time.time())
        token = forge_token(settings, alice.access_token, iat=now - 1000, exp=now - 10)

        assert_rejected_token(await get_me(client, token))

    async def test_token_with_iat_in_the_future_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        now = int(time.time())
        token = forge_token(settings, alice.access_token, iat=now + 3600, exp=now + 7200)

        assert_rejected_token(await get_me(client, token))

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("iss", "someone-else"),
            ("iss", ["taskhub-not"]),
            ("aud", "someone-else"),
            ("aud", ["other", "another"]),
            ("aud", ""),
            ("type", "refresh"),
            ("type", "Access"),
            ("type", ["access"]),
            ("type", None),
            ("sid", "not-a-uuid"),
            ("sid", str(uuid.UUID(int=0))),
            ("sid", 12345),
            ("sid", None),
            ("sub", "nobody"),
            ("sub", 42),
            ("sub", ""),
            ("jti", 42),
            ("exp", "tomorrow"),
            ("exp", 10**30),
            ("exp", 1e300),
            ("exp", -(10**30)),
            ("iat", "now"),
            ("iat", 10**30),
            ("iat", 1e300),
        ],
    )
    async def test_token_with_wrong_claim_value_signed_with_the_right_secret_gives_401(
        self,
        client: httpx.AsyncClient,
        alice: ApiUser,
        settings: Settings,
        claim: str,
        value: object,
    ) -> None:
        token = forge_token(settings, alice.access_token, **{claim: value})

        assert_rejected_token(await get_me(client, token))

    async def test_token_with_nul_in_subject_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        token = forge_token(settings, alice.access_token, sub="alice\x00")

        assert_rejected_token(await get_me(client, token))

    async def test_token_for_another_user_with_alices_session_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, settings: Settings
    ) -> None:
        token = forge_token(settings, alice.access_token, sub="bob")

        assert_rejected_token(await get_me(client, token))

    async def test_token_with_another_users_session_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, settings: Settings
    ) -> None:
        token = forge_token(settings, alice.access_token, sid=claims_of(bob.access_token)["sid"])

        assert_rejected_token(await get_me(client, token))

    @pytest.mark.parametrize("claim", ["sub", "type", "sid", "jti", "iat", "exp", "iss", "aud"])
    async def test_token_missing_a_required_claim_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings, claim: str
    ) -> None:
        token = forge_token(settings, alice.access_token, without={claim})

        assert_rejected_token(await get_me(client, token))

    async def test_refresh_token_used_as_access_token_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert_rejected_token(await get_me(client, alice.refresh_token))

    async def test_tampered_payload_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        head, _payload, signature = alice.access_token.split(".")
        bobs_payload = bob.access_token.split(".")[1]

        assert_rejected_token(await get_me(client, f"{head}.{bobs_payload}.{signature}"))

    async def test_payload_changed_by_one_claim_without_resigning_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        head, _payload, signature = alice.access_token.split(".")
        claims = claims_of(alice.access_token)
        claims["exp"] += 3600

        assert_rejected_token(await get_me(client, f"{head}.{json_segment(claims)}.{signature}"))

    async def test_tampered_signature_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        head, payload, signature = alice.access_token.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

        assert_rejected_token(await get_me(client, f"{head}.{payload}.{flipped}"))
        assert_rejected_token(await get_me(client, f"{head}.{payload}."))

    async def test_forged_token_with_valid_claims_is_accepted(
        self, client: httpx.AsyncClient, alice: ApiUser, settings: Settings
    ) -> None:
        # The control for the cases above: re-signing unchanged claims with the secret works.
        assert (await get_me(client, forge_token(settings, alice.access_token))).status_code == 200


class TestTokensOfEndedSessions:
    async def test_token_of_deleted_user_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204

        assert_rejected_token(await get_me(client, alice.access_token))

    async def test_token_of_deleted_user_stays_dead_after_username_is_registered_again(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        assert (await client.delete(ME, headers=alice.headers)).status_code == 204
        assert (await register(client, "alice")).status_code == 201
        assert (await login(client, "alice")).status_code == 200

        assert_rejected_token(await get_me(client, alice.access_token))

    async def test_token_of_session_ended_by_logout_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        logout = await client.post(f"{API}/auth/logout", headers=alice.headers)
        assert logout.status_code == 204

        assert_rejected_token(await get_me(client, alice.access_token))

    async def test_token_of_session_revoked_through_sessions_endpoint_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()
        sid = claims_of(other["access_token"])["sid"]

        revoke = await client.delete(f"{API}/users/me/sessions/{sid}", headers=alice.headers)
        assert revoke.status_code == 204

        assert_rejected_token(await get_me(client, other["access_token"]))
        assert (await get_me(client, alice.access_token)).status_code == 200

    async def test_token_of_session_revoked_by_refresh_token_reuse_gives_401(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        refresh = f"{API}/auth/refresh"
        first = await client.post(refresh, json={"refresh_token": alice.refresh_token})
        assert first.status_code == 200
        reuse = await client.post(refresh, json={"refresh_token": alice.refresh_token})
        assert_problem(reuse, 401)

        assert_rejected_token(await get_me(client, alice.access_token))
        assert_rejected_token(await get_me(client, first.json()["access_token"]))

    async def test_password_change_ends_every_other_session_but_not_the_callers(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        other = (await login(client, "alice")).json()

        change = await client.post(
            f"{API}/users/me/password",
            json={"current_password": alice.password, "new_password": "fresh-meadow-lantern-9"},
            headers=alice.headers,
        )
        assert change.status_code == 204, change.text

        assert (await get_me(client, alice.access_token)).status_code == 200
        assert_rejected_token(await get_me(client, other["access_token"]))
        refreshed = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert_problem(refreshed, 401)
        assert (await login(client, "alice", "fresh-meadow-lantern-9")).status_code == 200

    async def test_password_change_leaves_other_users_sessions_alone(
        self, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
    ) -> None:
        change = await client.post(
            f"{API}/users/me/password",
            json={"current_password": alice.password, "new_password": "fresh-meadow-lantern-9"},
            headers=alice.headers,
        )
        assert change.status_code == 204

        assert (await get_me(client, bob.access_token)).status_code == 200

    async def test_ending_one_users_session_leaves_another_users_token_working(
        self, client: httpx.AsyncClient, alice: ApiUser
    ) -> None:
        carol = await make_user(client, "carol")
        assert (await client.post(f"{API}/auth/logout", headers=alice.headers)).status_code == 204

        assert (await get_me(client, carol.access_token)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{API}/users/me"),
        ("POST", f"{API}/auth/logout"),
        ("GET", f"{API}/users/me/sessions"),
        ("DELETE", f"{API}/users/me/sessions/{uuid.UUID(int=1)}"),
        ("POST", f"{API}/users/me/password"),
        ("DELETE", f"{API}/users/me"),
    ],
)
async def test_every_auth_protected_route_rejects_a_forged_token(
    client: httpx.AsyncClient, alice: ApiUser, method: str, path: str
) -> None:
    # Without a token at all: the matrix (test_every_protected_route_is_401_without_a_token).
    # Here: signed with another secret, naming no key.
    token = sign_token(
        claims_of(alice.access_token), OTHER_SECRET, header={"alg": "HS256", "typ": "JWT"}
    )
    bad_token = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert_rejected_token(bad_token)
