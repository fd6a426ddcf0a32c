"""Settings: read from the environment, refuse weak or unsafe values, derive sensible defaults."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from taskhub.config import (
    ENV_EXAMPLE_SECRET,
    ConfigurationError,
    Settings,
    async_database_url,
    load_settings,
)

GOOD_SECRET = secrets.token_urlsafe(48)
POSTGRES_URL = "postgresql://taskhub:pw@db.internal:5432/taskhub"
PRODUCTION: dict[str, Any] = {
    "ENVIRONMENT": "production",
    "JWT_SECRET": GOOD_SECRET,
    "DATABASE_URL": POSTGRES_URL,
    "REDIS_URL": "redis://cache.internal:6379/0",
}
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets is in the environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**values)
    return str(caught.value)


class TestJwtSecret:
    def test_missing_is_refused(self) -> None:
        assert "JWT_SECRET" in refusal()

    def test_shorter_than_32_bytes_is_refused(self) -> None:
        message = refusal(JWT_SECRET="x" * 31)

        assert "JWT_SECRET" in message
        assert "32 bytes" in message

    def test_length_is_counted_in_bytes(self) -> None:
        assert settings(JWT_SECRET="é" * 16).JWT_SECRET.get_secret_value() == "é" * 16
        assert "32 bytes" in refusal(JWT_SECRET="é" * 15 + "x")

    def test_is_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("JWT_SECRET", GOOD_SECRET)

        assert settings().JWT_SECRET.get_secret_value() == GOOD_SECRET

    def test_is_never_shown_by_repr(self) -> None:
        assert GOOD_SECRET not in repr(settings(JWT_SECRET=GOOD_SECRET))

    def test_the_refusal_does_not_echo_the_value(self) -> None:
        weak = "weak-but-private-value"

        assert weak not in refusal(JWT_SECRET=weak)


class TestProduction:
    def test_a_safe_configuration_is_accepted(self) -> None:
        production = settings(**PRODUCTION)

        assert production.database_url == "postgresql+psycopg://taskhub:pw@db.internal:5432/taskhub"
        assert production.bcrypt_rounds == 12

    @pytest.mark.parametrize(
        "placeholder",
        [
            "changeme",
            "secret",
            ENV_EXAMPLE_SECRET,
            ENV_EXAMPLE_SECRET.upper(),
            "changeme" * 4,
            "secret" * 6,
            "x" * 64,
        ],
    )
    def test_placeholder_secrets_are_refused(self, placeholder: str) -> None:
        assert "JWT_SECRET" in refusal(**{**PRODUCTION, "JWT_SECRET": placeholder})

    def test_the_env_example_value_is_refused(self) -> None:
        example = (PROJECT_ROOT / ".env.example").read_text()
        [line] = [line for line in example.splitlines() if line.startswith("JWT_SECRET=")]
        value = line.removeprefix("JWT_SECRET=")

        assert "placeholder" in refusal(**{**PRODUCTION, "JWT_SECRET": value})

    def test_the_env_example_value_is_accepted_outside_production(self) -> None:
        assert settings(JWT_SECRET=ENV_EXAMPLE_SECRET).ENVIRONMENT == "development"

    def test_sqlite_is_refused(self) -> None:
        message = refusal(**{**PRODUCTION, "DATABASE_URL": "sqlite:///var/prod.db"})

        assert "PostgreSQL" in message

    def test_the_sqlite_default_is_refused(self) -> None:
        values = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}

        assert "PostgreSQL" in refusal(**values)

    def test_missing_redis_url_is_refused(self) -> None:
        values = {k: v for k, v in PRODUCTION.items() if k != "REDIS_URL"}

        assert "REDIS_URL" in refusal(**values)

    def test_bcrypt_rounds_below_12_are_refused(self) -> None:
        assert "BCRYPT_ROUNDS" in refusal(**PRODUCTION, BCRYPT_ROUNDS=11)

    def test_bcrypt_rounds_of_12_or_more_are_accepted(self) -> None:
        assert settings(**PRODUCTION, BCRYPT_ROUNDS=13).bcrypt_rounds == 13

    def test_rate_limits_switched_off_are_refused(self) -> None:
        assert "RATE_LIMIT_ENABLED must be true in production" in refusal(
            **PRODUCTION, RATE_LIMIT_ENABLED=False
        )

    def test_rate_limits_may_be_switched_off_elsewhere(self) -> None:
        for environment in ("development", "test"):
            configured = settings(
                JWT_SECRET=GOOD_SECRET, ENVIRONMENT=environment, RATE_LIMIT_ENABLED=False
            )
            assert configured.RATE_LIMIT_ENABLED is False


class TestTrustedProxies:
    @pytest.mark.parametrize(
        "value",
        ["", "10.0.0.0/16", " 10.0.0.1 , 192.168.0.0/24,", "fd00::/8,10.0.0.5", "10.0.0.1/8"],
    )
    def test_addresses_and_cidr_blocks_are_accepted(self, value: str) -> None:
        configured = settings(JWT_SECRET=GOOD_SECRET, TRUSTED_PROXIES=value)

        assert value == configured.TRUSTED_PROXIES

    @pytest.mark.parametrize(
        "value", ["alb.internal", "10.0.0.0/33", "10.0.0.0/16;10.1.0.0/16", "10.0.0.256", "*"]
    )
    @pytest.mark.parametrize("environment", ["development", "test", "production"])
    def test_anything_else_is_refused_in_every_environment(
        self, value: str, environment: str
    ) -> None:
        values = PRODUCTION if environment == "production" else {"JWT_SECRET": GOOD_SECRET}

        message = refusal(**{**values, "ENVIRONMENT": environment, "TRUSTED_PROXIES": value})

        assert "TRUSTED_PROXIES" in message
        assert "IP addresses or CIDR blocks" in message

    def test_the_refusal_is_one_line_naming_the_variable_and_the_bad_entry(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("JWT_SECRET", GOOD_SECRET)
        monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/16, alb.internal")

        with pytest.raises(ConfigurationError) as caught:
            load_settings()

        assert str(caught.value) == (
            "invalid configuration: TRUSTED_PROXIES: must be comma-separated IP addresses or "
            "CIDR blocks: 'alb.internal' does not appear to be an IPv4 or IPv6 network"
        )


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
            ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
            ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
            ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
            ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
            ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ],
    )
    def test_urls_map_to_the_async_drivers(self, given: str, expected: str) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET, DATABASE_URL=given).database_url == expected
        assert async_database_url(given) == expected

    @pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
    def test_other_databases_are_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match="DATABASE_URL"):
            async_database_url(url)

    @pytest.mark.parametrize(
        ("environment", "path"),
        [("development", "var/taskhub.db"), ("test", "var/test.db")],
    )
    def test_default_is_a_sqlite_file_under_var(self, environment: str, path: str) -> None:
        configured = settings(JWT_SECRET=GOOD_SECRET, ENVIRONMENT=environment)

        assert configured.database_url == f"sqlite+aiosqlite:///{path}"
        assert configured.is_sqlite


class TestDefaults:
    def test_environment_defaults_to_development(self) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET).ENVIRONMENT == "development"

    def test_the_test_environment_uses_4_bcrypt_rounds(self) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET, ENVIRONMENT="test").bcrypt_rounds == 4

    def test_development_uses_12_bcrypt_rounds(self) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET).bcrypt_rounds == 12

    def test_bcrypt_rounds_can_be_set(self) -> None:
        assert (
            settings(JWT_SECRET=GOOD_SECRET, ENVIRONMENT="test", BCRYPT_ROUNDS=5).bcrypt_rounds == 5
        )

    @pytest.mark.parametrize(
        ("environment", "log_format"),
        [("development", "console"), ("test", "json"), ("production", "json")],
    )
    def test_log_format_depends_on_the_environment(self, environment: str, log_format: str) -> None:
        values = PRODUCTION if environment == "production" else {"JWT_SECRET": GOOD_SECRET}

        assert settings(**{**values, "ENVIRONMENT": environment}).log_format == log_format

    @pytest.mark.parametrize("wait", ["0", "-1", "61", "soon"])
    def test_a_hash_queue_wait_out_of_bounds_is_refused(self, wait: str) -> None:
        with pytest.raises(ValidationError, match="HASH_QUEUE_WAIT"):
            settings(JWT_SECRET=GOOD_SECRET, HASH_QUEUE_WAIT=wait)

    def test_log_format_can_be_set(self) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET, LOG_FORMAT="json").log_format == "json"

    def test_documented_defaults(self) -> None:
        configured = settings(JWT_SECRET=GOOD_SECRET)

        assert configured.REDIS_URL is None
        assert (configured.JWT_ISSUER, configured.JWT_AUDIENCE) == ("taskhub", "taskhub")
        assert (configured.ACCESS_TOKEN_TTL, configured.REFRESH_TOKEN_TTL) == (900, 604_800)
        assert configured.PASSWORD_MIN_LENGTH == 8
        assert configured.RATE_LIMIT_ENABLED is True
        assert configured.RATE_LIMIT_LOGIN == "10/minute"
        assert configured.RATE_LIMIT_LOGIN_IP == "50/minute"
        assert configured.RATE_LIMIT_LOGIN_USERNAME == "100/hour"
        assert configured.RATE_LIMIT_API == "600/minute"
        assert configured.RATE_LIMIT_REGISTER == "20/hour"
        assert configured.RATE_LIMIT_KEY_PREFIX == "taskhub-limits"
        assert configured.TRUSTED_PROXIES == ""
        assert configured.MAX_BODY_BYTES == 65_536
        assert configured.REQUEST_READ_TIMEOUT == 10
        assert configured.HASH_QUEUE_LIMIT is None  # what starts within HASH_QUEUE_WAIT
        assert configured.HASH_QUEUE_WAIT == 1
        assert configured.CORS_ORIGINS == ""
        assert configured.DOCS_ENABLED is True
        assert (configured.REMINDER_LEAD_TIME, configured.REMINDER_SCAN_INTERVAL) == (3600, 60)
        assert configured.LOG_LEVEL == "INFO"
        assert (configured.HOST, configured.PORT, configured.WEB_CONCURRENCY) == (
            "127.0.0.1",
            8000,
            1,
        )

    def test_an_empty_rate_limit_key_prefix_is_refused(self) -> None:
        assert "RATE_LIMIT_KEY_PREFIX" in refusal(JWT_SECRET=GOOD_SECRET, RATE_LIMIT_KEY_PREFIX="")

    def test_env_example_lists_every_variable(self) -> None:
        example = (PROJECT_ROOT / ".env.example").read_text()

        for name in Settings.model_fields:
            assert f"{name}=" in example, name


class TestLoadSettings:
    def test_reads_dotenv_in_development(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".env").write_text(f"JWT_SECRET={GOOD_SECRET}\n")

        assert load_settings().JWT_SECRET.get_secret_value() == GOOD_SECRET

    def test_ignores_dotenv_outside_development(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ENVIRONMENT", "test")
        (tmp_path / ".env").write_text(f"JWT_SECRET={GOOD_SECRET}\n")

        with pytest.raises(ConfigurationError, match="JWT_SECRET"):
            load_settings()

    def test_the_environment_wins_over_dotenv(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".env").write_text(f"JWT_SECRET={GOOD_SECRET}\n")
        from_env = secrets.token_urlsafe(40)
        monkeypatch.setenv("JWT_SECRET", from_env)

        assert load_settings().JWT_SECRET.get_secret_value() == from_env

    def test_error_is_one_line_naming_the_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)

        with pytest.raises(ConfigurationError) as caught:
            load_settings()

        message = str(caught.value)
        assert "\n" not in message
        assert "JWT_SECRET" in message


class TestAdmissionLimit:
    def test_defaults_to_the_pool_size(self) -> None:
        assert settings(JWT_SECRET=GOOD_SECRET, DB_POOL_SIZE=12).admission_limit == 12

    def test_an_explicit_limit_wins(self) -> None:
        assert (
            settings(
                JWT_SECRET=GOOD_SECRET, DB_POOL_SIZE=12, MAX_CONCURRENT_REQUESTS=50
            ).admission_limit
            == 50
        )

    def test_zero_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            settings(JWT_SECRET=GOOD_SECRET, MAX_CONCURRENT_REQUESTS=0)
