"""JWT key rotation: tokens name their key (`kid`); JWT_SECRET signs, JWT_PREVIOUS_SECRETS verify.

The app-level cases run three deployments of the same database the way a rotation rolls out:
before (old secret), during (new secret, old one listed as previous) and after (old one removed).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from taskhub.config import ENV_EXAMPLE_SECRET, Settings
from taskhub.main import create_app
from taskhub.security.tokens import InvalidToken, TokenCodec, key_id
from tests.conftest import client_of, make_settings
from tests.helpers import API, assert_problem, make_user
from tests.tokens import claims_of, header_of, issue_token, sign_token

OLD_SECRET = "old-" + secrets.token_urlsafe(40)
NEW_SECRET = "new-" + secrets.token_urlsafe(40)
UNRELATED_SECRET = "unrelated-" + secrets.token_urlsafe(40)
ME = f"{API}/users/me"
REFRESH = f"{API}/auth/refresh"
INVALID_TOKEN = 'Bearer error="invalid_token"'


def codec(secret: str, *previous: str) -> TokenCodec:
    return TokenCodec(
        secret=secret, issuer="taskhub", audience="taskhub", previous_secrets=tuple(previous)
    )


def reason_for(token_codec: TokenCodec, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        token_codec.decode(token, expected_type="access")
    return caught.value.reason


def kid_of(token: str) -> Any:
    return header_of(token).get("kid")


def resigned(token: str, secret: str, header: dict[str, Any]) -> str:
    """The token's claims signed by hand (so any header goes) with HS256 under `secret`."""
    return sign_token(claims_of(token), secret, header={"alg": "HS256", "typ": "JWT", **header})


class TestKeyId:
    def test_every_token_names_the_key_that_signed_it(self) -> None:
        token, _ = issue_token(codec(NEW_SECRET, OLD_SECRET))

        assert kid_of(token) == key_id(NEW_SECRET)
        assert header_of(token)["alg"] == "HS256"

    def test_key_id_is_short_hex_and_reveals_nothing_of_the_secret(self) -> None:
        kid = key_id(NEW_SECRET)

        assert re.fullmatch(r"[0-9a-f]{16}", kid)
        assert kid not in NEW_SECRET
        assert NEW_SECRET[:8] not in kid

    def test_key_ids_are_stable_and_differ_between_secrets(self) -> None:
        assert key_id(NEW_SECRET) == key_id(NEW_SECRET)
        assert key_id(NEW_SECRET) != key_id(OLD_SECRET)


class TestCodecRotation:
    def test_token_of_a_previous_secret_verifies_while_it_is_listed(self) -> None:
        old_token, _ = issue_token(codec(OLD_SECRET))

        claims = codec(NEW_SECRET, OLD_SECRET).decode(old_token, expected_type="access")

        assert claims.subject == "alice"

    def test_token_of_a_previous_secret_is_refused_once_it_is_removed(self) -> None:
        old_token, _ = issue_token(codec(OLD_SECRET))

        assert reason_for(codec(NEW_SECRET), old_token) == "unknown_key"

    def test_tokens_are_always_signed_with_the_current_secret(self) -> None:
        token, _ = issue_token(codec(NEW_SECRET, OLD_SECRET))

        assert codec(NEW_SECRET).decode(token, expected_type="access").subject == "alice"
        assert reason_for(codec(OLD_SECRET), token) == "unknown_key"

    def test_unknown_kid_is_refused(self) -> None:
        token, _ = issue_token(codec(UNRELATED_SECRET))

        assert reason_for(codec(NEW_SECRET, OLD_SECRET), token) == "unknown_key"

    def test_missing_kid_is_refused_even_with_the_right_signature(self) -> None:
        token = resigned(issue_token(codec(NEW_SECRET))[0], NEW_SECRET, {})

        assert kid_of(token) is None
        assert reason_for(codec(NEW_SECRET), token) == "unknown_key"

    @pytest.mark.parametrize("kid", [7, ["x"], {"k": 1}, "", "é"])
    def test_odd_kid_values_are_refused(self, kid: object) -> None:
        token = resigned(issue_token(codec(NEW_SECRET))[0], NEW_SECRET, {"kid": kid})

        with pytest.raises(InvalidToken):
            codec(NEW_SECRET).decode(token, expected_type="access")

    def test_the_kid_picks_the_key_no_other_key_is_tried(self) -> None:
        # Naming the old key but signed with the current one: verified with the old key only.
        token = resigned(issue_token(codec(NEW_SECRET))[0], NEW_SECRET, {"kid": key_id(OLD_SECRET)})

        assert reason_for(codec(NEW_SECRET, OLD_SECRET), token) == "bad_signature"

    def test_reasons_name_the_failure(self) -> None:
        current = codec(NEW_SECRET)
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        expired, _ = issue_token(current, issued_at=an_hour_ago, lifetime=timedelta(minutes=59))
        refresh, _ = issue_token(current, token_type="refresh")

        assert reason_for(current, expired) == "expired"
        assert reason_for(current, refresh) == "wrong_type"
        assert reason_for(current, "not-a-token") == "malformed"


class TestSettings:
    @pytest.fixture(autouse=True)
    def _clean_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in Settings.model_fields:
            monkeypatch.delenv(name, raising=False)

    def test_no_previous_secrets_by_default(self) -> None:
        assert Settings(_env_file=None, JWT_SECRET=NEW_SECRET).previous_jwt_secrets == ()

    def test_previous_secrets_are_comma_separated(self) -> None:
        configured = Settings(
            _env_file=None,
            JWT_SECRET=NEW_SECRET,
            JWT_PREVIOUS_SECRETS=f" {OLD_SECRET} ,{UNRELATED_SECRET},",
        )

        assert configured.previous_jwt_secrets == (OLD_SECRET, UNRELATED_SECRET)
        assert OLD_SECRET not in repr(configured)

    def test_previous_secrets_are_read_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("JWT_SECRET", NEW_SECRET)
        monkeypatch.setenv("JWT_PREVIOUS_SECRETS", OLD_SECRET)

        assert Settings(_env_file=None).previous_jwt_secrets == (OLD_SECRET,)

    def test_a_short_previous_secret_is_refused_without_echoing_it(self) -> None:
        short = "short-previous-secret"
        with pytest.raises(ValidationError) as caught:
            Settings(
                _env_file=None, JWT_SECRET=NEW_SECRET, JWT_PREVIOUS_SECRETS=f"{OLD_SECRET},{short}"
            )

        message = str(caught.value)
        assert "JWT_PREVIOUS_SECRETS" in message
        assert "32 bytes" in message
        assert short not in message
        assert OLD_SECRET not in message

    @pytest.mark.parametrize("placeholder", [ENV_EXAMPLE_SECRET, "changeme" * 4])
    def test_a_placeholder_previous_secret_is_refused_in_production(self, placeholder: str) -> None:
        with pytest.raises(ValidationError, match="JWT_PREVIOUS_SECRETS"):
            Settings(
                _env_file=None,
                ENVIRONMENT="production",
                JWT_SECRET=NEW_SECRET,
                JWT_PREVIOUS_SECRETS=f"{OLD_SECRET},{placeholder}",
                DATABASE_URL="postgresql://taskhub:pw@db.internal/taskhub",
                REDIS_URL="redis://cache.internal:6379/0",
            )

    def test_a_random_previous_secret_is_accepted_in_production(self) -> None:
        configured = Settings(
            _env_file=None,
            ENVIRONMENT="production",
            JWT_SECRET=NEW_SECRET,
            JWT_PREVIOUS_SECRETS=OLD_SECRET,
            DATABASE_URL="postgresql://taskhub:pw@db.internal/taskhub",
            REDIS_URL="redis://cache.internal:6379/0",
        )

        assert configured.previous_jwt_secrets == (OLD_SECRET,)


class Deployments:
    """The same database served before, during and after a rotation."""

    def __init__(self, database_url: str) -> None:
        self.apps = {
            "before": create_app(make_settings(database_url, JWT_SECRET=OLD_SECRET)),
            "during": create_app(
                make_settings(database_url, JWT_SECRET=NEW_SECRET, JWT_PREVIOUS_SECRETS=OLD_SECRET)
            ),
            "after": create_app(make_settings(database_url, JWT_SECRET=NEW_SECRET)),
        }
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def open(self, stack: AsyncExitStack) -> None:
        for name, application in self.apps.items():
            stack.push_async_callback(application.state.database.dispose)
            self.clients[name] = await stack.enter_async_context(client_of(application))


@pytest.fixture
async def deployments(database_url: str, app: FastAPI) -> AsyncIterator[Deployments]:
    # `app`: its teardown empties the tables these deployments share.
    async with AsyncExitStack() as stack:
        running = Deployments(database_url)
        await running.open(stack)
        yield running


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers={"Authorization": f"Bearer {token}"})


def assert_rejected_token(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == INVALID_TOKEN


class TestRotationAcrossDeployments:
    async def test_access_token_of_the_old_secret_works_while_listed_then_is_refused(
        self, deployments: Deployments
    ) -> None:
        alice = await make_user(deployments.clients["before"], "alice")
        assert kid_of(alice.access_token) == key_id(OLD_SECRET)

        assert (await me(deployments.clients["during"], alice.access_token)).status_code == 200
        assert_rejected_token(await me(deployments.clients["after"], alice.access_token))

    async def test_refresh_with_an_old_refresh_token_gives_a_pair_signed_with_the_new_secret(
        self, deployments: Deployments
    ) -> None:
        alice = await make_user(deployments.clients["before"], "alice")

        refreshed = await deployments.clients["during"].post(
            REFRESH, json={"refresh_token": alice.refresh_token}
        )

        assert refreshed.status_code == 200, refreshed.text
        pair = refreshed.json()
        assert kid_of(pair["access_token"]) == key_id(NEW_SECRET)
        assert kid_of(pair["refresh_token"]) == key_id(NEW_SECRET)
        # The new pair outlives the old secret's removal.
        assert (await me(deployments.clients["after"], pair["access_token"])).status_code == 200
        again = await deployments.clients["after"].post(
            REFRESH, json={"refresh_token": pair["refresh_token"]}
        )
        assert again.status_code == 200, again.text

    async def test_refresh_token_of_a_removed_secret_is_refused(
        self, deployments: Deployments
    ) -> None:
        alice = await make_user(deployments.clients["before"], "alice")

        refused = await deployments.clients["after"].post(
            REFRESH, json={"refresh_token": alice.refresh_token}
        )

        assert_rejected_token(refused)

    async def test_token_with_an_unknown_kid_is_refused(self, deployments: Deployments) -> None:
        alice = await make_user(deployments.clients["during"], "alice")
        forged = resigned(alice.access_token, UNRELATED_SECRET, {"kid": key_id(UNRELATED_SECRET)})

        assert_rejected_token(await me(deployments.clients["during"], forged))

    async def test_token_without_a_kid_is_refused(self, deployments: Deployments) -> None:
        alice = await make_user(deployments.clients["during"], "alice")
        without_kid = resigned(alice.access_token, NEW_SECRET, {})

        assert_rejected_token(await me(deployments.clients["during"], without_kid))
        # The control: the same claims naming the key are accepted.
        named = resigned(alice.access_token, NEW_SECRET, {"kid": key_id(NEW_SECRET)})
        assert (await me(deployments.clients["during"], named)).status_code == 200
