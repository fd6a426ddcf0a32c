"""`python -m taskhub`, run the way an operator runs it: a separate process in its own folder."""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from taskhub.__main__ import describe_database, describe_service
from taskhub.config import MIN_SECRET_BYTES, Settings
from tests.hermetic import process_env

TIMEOUT_SECONDS = 60
GOOD_SECRET = secrets.token_urlsafe(48)


def run_taskhub(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "taskhub", *args],
        cwd=cwd,
        env=process_env(**env),  # no ENVIRONMENT: a development run, as users start it
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def dotenv_secret(path: Path) -> str:
    [line] = [line for line in path.read_text().splitlines() if line.startswith("JWT_SECRET=")]
    return line.removeprefix("JWT_SECRET=")


class TestMissingConfiguration:
    def test_missing_jwt_secret_exits_2_with_one_line_naming_it(self, tmp_path: Path) -> None:
        result = run_taskhub(tmp_path, "migrate")

        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "JWT_SECRET" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        assert list(tmp_path.iterdir()) == []  # nothing was created, not even var/

    def test_short_jwt_secret_exits_2_with_one_line_naming_it(self, tmp_path: Path) -> None:
        short = "s" * (MIN_SECRET_BYTES - 1)

        result = run_taskhub(tmp_path, "migrate", JWT_SECRET=short)

        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "JWT_SECRET" in result.stderr
        assert f"{MIN_SECRET_BYTES} bytes" in result.stderr
        assert short not in result.stderr
        assert "Traceback" not in result.stderr

    def test_unsafe_production_settings_exit_2_without_traceback(self, tmp_path: Path) -> None:
        result = run_taskhub(
            tmp_path,
            "serve",
            ENVIRONMENT="production",
            JWT_SECRET="changeme" * 4,
            DATABASE_URL="postgresql://u@127.0.0.1:1/db",
            REDIS_URL="redis://127.0.0.1:1/0",
        )

        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "JWT_SECRET" in result.stderr
        assert "changeme" not in result.stderr
        assert "Traceback" not in result.stderr


PRODUCTION = {
    "ENVIRONMENT": "production",
    "JWT_SECRET": secrets.token_urlsafe(48),
    "DATABASE_URL": "postgresql://u@127.0.0.1:1/db",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


class TestProductionRefusals:
    """The contract's "Production refuses": one line naming the variable, no traceback."""

    @pytest.mark.parametrize(
        ("variable", "value", "says"),
        [
            ("RATE_LIMIT_ENABLED", "false", "RATE_LIMIT_ENABLED must be true in production"),
            ("TRUSTED_PROXIES", "10.0.0.0/16,alb.internal", "TRUSTED_PROXIES: must be"),
            ("TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES: must be"),
        ],
    )
    def test_serve_exits_2_with_one_line(
        self, tmp_path: Path, variable: str, value: str, says: str
    ) -> None:
        result = run_taskhub(tmp_path, "serve", **{**PRODUCTION, variable: value})

        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("taskhub: invalid configuration: ")
        assert says in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""

    def test_an_unparsable_trusted_proxies_is_one_line_in_development_too(
        self, tmp_path: Path
    ) -> None:
        result = run_taskhub(
            tmp_path,
            "serve",
            JWT_SECRET=PRODUCTION["JWT_SECRET"],
            TRUSTED_PROXIES="load-balancer",
        )

        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "TRUSTED_PROXIES" in result.stderr
        assert "Traceback" not in result.stderr


class TestInitEnv:
    def test_writes_a_private_dotenv_with_a_fresh_secret(self, tmp_path: Path) -> None:
        result = run_taskhub(tmp_path, "init-env")

        assert result.returncode == 0, result.stderr
        env_file = tmp_path / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        secret = dotenv_secret(env_file)
        assert len(secret.encode()) >= MIN_SECRET_BYTES
        assert secret not in result.stdout + result.stderr

    def test_does_not_overwrite_an_existing_dotenv(self, tmp_path: Path) -> None:
        env_file = tmp_path / ".env"
        env_file.write_text("JWT_SECRET=mine-and-only-mine-0123456789abcdefgh\nPORT=9000\n")

        result = run_taskhub(tmp_path, "init-env")

        assert result.returncode == 0, result.stderr
        assert env_file.read_text() == (
            "JWT_SECRET=mine-and-only-mine-0123456789abcdefgh\nPORT=9000\n"
        )

    def test_the_written_dotenv_is_enough_to_migrate(self, tmp_path: Path) -> None:
        assert run_taskhub(tmp_path, "init-env").returncode == 0

        result = run_taskhub(tmp_path, "migrate")

        assert result.returncode == 0, result.stderr
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'taskhub.db'}")
        try:
            tables = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"alembic_version", "user_account", "user_session", "task"} <= tables


# A password only this run knows: the start-up line must not show it, nor the user name.
DB_PASSWORD = secrets.token_urlsafe(12)


class TestServe:
    @pytest.mark.parametrize(
        ("url", "described"),
        [
            ("sqlite+aiosqlite:///var/taskhub.db", "SQLite var/taskhub.db"),
            ("sqlite:////srv/taskhub/data.db", "SQLite /srv/taskhub/data.db"),
            ("sqlite+aiosqlite://", "SQLite in memory"),
            (
                f"postgresql+psycopg://operator:{DB_PASSWORD}@db.internal:5432/taskhub",
                "PostgreSQL db.internal:5432/taskhub",
            ),
            (
                f"postgresql://operator:{DB_PASSWORD}@db.internal/taskhub",
                "PostgreSQL db.internal/taskhub",
            ),
            (
                "postgresql:///taskhub?host=/run/postgresql",
                "PostgreSQL taskhub on the local socket",
            ),
        ],
        # Not the URLs: the password differs per process, and xdist workers must agree on names.
        ids=["sqlite", "sqlite-absolute", "sqlite-memory", "postgresql", "no-port", "socket"],
    )
    def test_the_database_is_described_without_credentials(self, url: str, described: str) -> None:
        assert describe_database(url) == described

    def test_the_start_up_line_names_address_docs_and_database(self) -> None:
        settings = Settings(
            _env_file=None,
            JWT_SECRET=GOOD_SECRET,
            HOST="::",
            PORT=8080,
            DOCS_ENABLED=False,
            DATABASE_URL=f"postgresql://operator:{DB_PASSWORD}@db.internal:5432/taskhub",
        )

        assert describe_service(settings) == (
            "TaskHub on http://[::]:8080 — docs off — PostgreSQL db.internal:5432/taskhub"
        )


def test_unknown_command_exits_2_with_usage(tmp_path: Path) -> None:
    result = run_taskhub(tmp_path, "explode")

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr
