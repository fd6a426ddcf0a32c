"""The suite is hermetic (tests/hermetic.py): what the environment pytest is started from holds
reaches neither the app under test nor any process the tests start. .ci/run also runs the whole
suite with a hostile environment exported."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from taskhub.config import ConfigurationError, Settings, load_settings
from tests.conftest import served_client
from tests.helpers import API, DEFAULT_PASSWORD
from tests.hermetic import APP_VARIABLES, HARNESS_SETTINGS, process_env
from tests.integration.served import start_server

# What a developer's shell or a CI runner may export. REDIS_URL points nowhere: a leak shows as a
# failing /ready, never as keys in somebody's Redis.
HOSTILE = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "JWT_SECRET": "changeme",  # pragma: allowlist secret - a placeholder, hostile on purpose
    "RATE_LIMIT_REGISTER": "1/hour",
    "CORS_ORIGINS": "https://evil.example",
    "TRUSTED_PROXIES": "0.0.0.0/0",
    "DOCS_ENABLED": "false",
}
# What `make_settings` gives the in-process app; every other setting keeps its default.
GIVEN_BY_MAKE_SETTINGS = frozenset({"ENVIRONMENT", "DATABASE_URL", "JWT_SECRET", "LOG_FORMAT"})


def test_the_suite_sees_no_app_variable_but_those_the_harness_sets() -> None:
    present = {name: os.environ[name] for name in APP_VARIABLES & os.environ.keys()}

    assert present == HARNESS_SETTINGS


def test_the_in_process_app_has_the_defaults_for_what_the_harness_does_not_set(
    settings: Settings,
) -> None:
    changed = {
        name
        for name, field in Settings.model_fields.items()
        if name not in GIVEN_BY_MAKE_SETTINGS
        and getattr(settings, name) != field.get_default(call_default_factory=True)
    }

    assert changed == set()


def test_no_dotenv_is_read_in_the_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's `.env` (make run writes one) holds a JWT_SECRET; the suite never reads it."""
    (tmp_path / ".env").write_text(f"JWT_SECRET={secrets.token_urlsafe(48)}\n")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        load_settings()


def test_a_started_process_gets_only_the_settings_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in APP_VARIABLES:
        monkeypatch.setenv(name, "from-outside")

    env = process_env(JWT_SECRET="given")

    assert {name: env[name] for name in APP_VARIABLES & env.keys()} == {"JWT_SECRET": "given"}
    assert env["PATH"] == os.environ["PATH"]  # what is not a setting is kept


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_a_served_app_ignores_the_environment_it_is_started_from(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in HOSTILE.items():
        monkeypatch.setenv(name, value)

    with (
        start_server(database_url, tmp_path) as server,
        served_client(server.base_url, timeout=10.0) as http,
    ):
        for username in ("hermetic-one", "hermetic-two"):  # RATE_LIMIT_REGISTER=1/hour: one
            response = http.post(
                f"{API}/auth/register", json={"username": username, "password": DEFAULT_PASSWORD}
            )
            assert response.status_code == 201, response.text
        ready = http.get("/ready")
        docs = http.get("/docs")
        cors = http.get("/health", headers={"Origin": "https://evil.example"})

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}  # no REDIS_URL
    assert docs.status_code == 200
    assert "access-control-allow-origin" not in cors.headers
