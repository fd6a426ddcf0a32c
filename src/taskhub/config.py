"""Application settings: every value comes from the environment (or `.env` in development)."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_SECRET_BYTES = 32
MIN_PRODUCTION_BCRYPT_ROUNDS = 12
ENV_EXAMPLE_SECRET = "replace-me-with-the-output-of-python-secrets-token-urlsafe-48"  # noqa: S105
# Values that people paste from tutorials; refused in production however long they are.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "your-secret-key", "supersecret", ENV_EXAMPLE_SECRET}
)
# "changeme" * 4 is long enough but no secret: a random one of 32+ bytes has far more variety.
MIN_DISTINCT_SECRET_CHARS = 10
DEFAULT_SQLITE_PATH = Path("var") / "taskhub.db"


class Settings(BaseSettings):
    """Runtime configuration. Field names are the environment variables operators set."""

    # hide_input_in_errors: a refused JWT_SECRET must not be printed back in the error.
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    ENVIRONMENT: Environment = "development"
    DATABASE_URL: str | None = None
    REDIS_URL: SecretStr | None = None
    JWT_SECRET: SecretStr
    # Comma-separated secrets that signed tokens still in use: they verify but never sign.
    JWT_PREVIOUS_SECRETS: SecretStr = SecretStr("")
    JWT_ISSUER: str = "taskhub"
    JWT_AUDIENCE: str = "taskhub"
    ACCESS_TOKEN_TTL: int = Field(default=900, ge=30, le=86_400)
    REFRESH_TOKEN_TTL: int = Field(default=604_800, ge=300, le=31_536_000)
    BCRYPT_ROUNDS: int | None = Field(default=None, ge=4, le=16)
    PASSWORD_MIN_LENGTH: int = Field(default=8, ge=1, le=72)
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN: str = "10/minute"
    RATE_LIMIT_LOGIN_IP: str = "50/minute"
    RATE_LIMIT_LOGIN_USERNAME: str = "100/hour"
    RATE_LIMIT_API: str = "600/minute"
    RATE_LIMIT_REGISTER: str = "20/hour"
    RATE_LIMIT_LOGIN_ATTEMPTS_IP: str = "60/minute"
    MAX_SESSIONS_PER_USER: int = Field(default=100, ge=1, le=10_000)
    MAX_PROJECTS_PER_USER: int = Field(default=1000, ge=1)
    MAX_MEMBERS_PER_PROJECT: int = Field(default=500, ge=2)
    MAX_TASKS_PER_PROJECT: int = Field(default=100_000, ge=1)
    MAX_TASKS_PER_USER: int = Field(default=100_000, ge=1)
    MAX_TOKENS_PER_USER: int = Field(default=50, ge=1, le=10_000)
    # Prefix of every rate-limit key in Redis: deployments (or test runs) sharing one Redis
    # database keep their counts apart, as CELERY_BROKER_KEY_PREFIX does for jobs.
    RATE_LIMIT_KEY_PREFIX: str = Field(default="taskhub-limits", min_length=1)
    TRUSTED_PROXIES: str = ""
    MAX_BODY_BYTES: int = Field(default=65_536, ge=1024)
    CORS_ORIGINS: str = ""
    DOCS_ENABLED: bool = True
    REMINDER_LEAD_TIME: int = Field(default=3600, ge=60)
    REMINDER_SCAN_INTERVAL: int = Field(default=60, ge=1)
    REMINDER_SCAN_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    CELERY_BROKER_KEY_PREFIX: str = ""
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    LOG_FORMAT: Literal["console", "json"] | None = None
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65_535)
    WEB_CONCURRENCY: int = Field(default=1, ge=1, le=64)
    DB_POOL_SIZE: int = Field(default=20, ge=1, le=200)
    DB_POOL_TIMEOUT: float = Field(default=5.0, gt=0, le=120)
    # PostgreSQL cancels a statement that runs longer (the request gets a 503). SQLite: ignored.
    DB_STATEMENT_TIMEOUT: float = Field(default=5.0, gt=0, le=3600)
    # The longest any request waits for Redis before the breaker opens (taskhub.redis_health).
    REDIS_TIMEOUT: float = Field(default=0.5, gt=0, le=30)
    # Unset: DB_POOL_SIZE, so admitted requests never queue for a connection as well.
    MAX_CONCURRENT_REQUESTS: int | None = Field(default=None, ge=1, le=10_000)
    REQUEST_QUEUE_TIMEOUT: float = Field(default=5.0, gt=0, le=120)
    # Seconds for a request's headers and body to arrive, from its first byte (ADR 0013).
    REQUEST_READ_TIMEOUT: float = Field(default=10.0, gt=0, le=300)
    # Password hashes that may wait for a hashing thread; past it, 503. Unset: as many as the
    # hashing threads start within HASH_QUEUE_WAIT seconds at the configured cost (ADR 0004).
    HASH_QUEUE_LIMIT: int | None = Field(default=None, ge=0, le=10_000)
    HASH_QUEUE_WAIT: float = Field(default=1.0, gt=0, le=60)
    METRICS_ENABLED: bool = True
    # 0: /metrics on the main app. Otherwise a separate listener on HOST:METRICS_PORT only.
    METRICS_PORT: int = Field(default=0, ge=0, le=65_535)

    @field_validator("JWT_SECRET")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
        return value

    @field_validator("JWT_PREVIOUS_SECRETS")
    @classmethod
    def _previous_secrets_are_long_enough(cls, value: SecretStr) -> SecretStr:
        for secret in _split_secrets(value):
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"each secret must be at least {MIN_SECRET_BYTES} bytes long")
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _trusted_proxies_parse(cls, value: str) -> str:
        """Parsed here by the parser the app uses, so a typo is one line at start-up in every
        environment, not a traceback from create_app."""
        try:
            parse_trusted_proxies(value)
        except ValueError as exc:
            raise ValueError(
                f"must be comma-separated IP addresses or CIDR blocks: {exc}"
            ) from None
        return value

    @model_validator(mode="after")
    def _metrics_port_is_usable(self) -> Settings:
        if self.METRICS_ENABLED and self.METRICS_PORT:
            if self.METRICS_PORT == self.PORT:
                raise ValueError("METRICS_PORT must differ from PORT (or be 0)")
            if self.WEB_CONCURRENCY > 1:
                # Each worker process keeps its own registry and would fight for the port.
                raise ValueError("METRICS_PORT needs WEB_CONCURRENCY=1; scale with more containers")
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.ENVIRONMENT != "production":
            return self
        secret = self.JWT_SECRET.get_secret_value().strip()
        if _is_placeholder(secret):
            raise ValueError("JWT_SECRET is a known placeholder; generate a random secret")
        if any(_is_placeholder(previous) for previous in self.previous_jwt_secrets):
            raise ValueError("JWT_PREVIOUS_SECRETS holds a known placeholder; remove it")
        if not self.database_url.startswith("postgresql+"):
            raise ValueError("DATABASE_URL must point at PostgreSQL in production")
        if self.REDIS_URL is None:
            raise ValueError("REDIS_URL is required in production")
        if self.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise ValueError(f"BCRYPT_ROUNDS must be at least {MIN_PRODUCTION_BCRYPT_ROUNDS}")
        if not self.RATE_LIMIT_ENABLED:
            # Brute force and the login limits the contract promises would be off.
            raise ValueError("RATE_LIMIT_ENABLED must be true in production")
        return self

    @cached_property
    def previous_jwt_secrets(self) -> tuple[str, ...]:
        return _split_secrets(self.JWT_PREVIOUS_SECRETS)

    @cached_property
    def database_url(self) -> str:
        """The SQLAlchemy URL with an async driver, whatever form the operator gave."""
        return async_database_url(self.DATABASE_URL or _default_sqlite_url(self.ENVIRONMENT))

    @property
    def admission_limit(self) -> int:
        return self.MAX_CONCURRENT_REQUESTS or self.DB_POOL_SIZE

    @cached_property
    def bcrypt_rounds(self) -> int:
        if self.BCRYPT_ROUNDS is not None:
            return self.BCRYPT_ROUNDS
        return 4 if self.ENVIRONMENT == "test" else 12

    @cached_property
    def log_format(self) -> str:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return "console" if self.ENVIRONMENT == "development" else "json"

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _split_secrets(value: SecretStr) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.get_secret_value().split(",") if part.strip())


def _is_placeholder(secret: str) -> bool:
    secret = secret.strip()
    return secret.lower() in PLACEHOLDER_SECRETS or len(set(secret)) < MIN_DISTINCT_SECRET_CHARS


def async_database_url(url: str) -> str:
    """Map plain `postgresql://` (as RDS hands out) and `sqlite://` URLs to our async drivers."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like postgresql://user:pass@host/db")
    base = scheme.split("+", 1)[0]
    if base in {"postgresql", "postgres"}:
        return f"postgresql+psycopg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError("DATABASE_URL must use postgresql:// or sqlite://")


def _default_sqlite_url(environment: str) -> str:
    name = "test.db" if environment == "test" else DEFAULT_SQLITE_PATH.name
    return f"sqlite:///{DEFAULT_SQLITE_PATH.parent / name}"


class ConfigurationError(Exception):
    """Settings are missing or unsafe; the message is one line meant for an operator."""


def load_settings() -> Settings:
    """Read settings from the environment; `.env` is only read in development."""
    environment = os.environ.get("ENVIRONMENT", "development")
    env_file = ".env" if environment == "development" else None
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "invalid configuration: " + "; ".join(problems)


@lru_cache(maxsize=16)
def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks; empty trusts nobody."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False)
        for item in value.split(",")
        if item.strip()
    )
