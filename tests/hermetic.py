"""The suite runs on its own settings, whatever the environment it is started from holds.

Every variable the app reads is a field of `Settings` (REDIS_URL, DATABASE_URL, JWT_SECRET,
RATE_LIMIT_*, ENVIRONMENT, CORS_ORIGINS, TRUSTED_PROXIES, ...). `scrub_environment()`, called
first thing by tests/conftest.py, removes them all from this process's environment and sets only
HARNESS_SETTINGS: ENVIRONMENT=test also means `load_settings()` never reads a developer's `.env`.
The processes the tests start (servers, Celery workers, the CLI) get `process_env()`: this
environment without any app variable, plus exactly the settings the test passes. A test that
needs Redis, say, asks for it on purpose.
"""

from __future__ import annotations

import os

from taskhub.config import Settings

# Derived, not listed: a setting added to Settings is scrubbed the day it is added.
APP_VARIABLES = frozenset(Settings.model_fields)
# What the harness itself sets in this process, in place of whatever the caller had.
HARNESS_SETTINGS = {"ENVIRONMENT": "test"}


def scrub_environment() -> list[str]:
    """Remove every app variable from os.environ, then set HARNESS_SETTINGS; returns the names the
    caller had set (they are ignored)."""
    ignored = sorted(APP_VARIABLES & os.environ.keys())
    for name in ignored:
        del os.environ[name]
    os.environ.update(HARNESS_SETTINGS)
    return ignored


def process_env(**settings: str) -> dict[str, str]:
    """The environment for a process a test starts: this one's without any app variable (not
    even the harness's own ENVIRONMENT), plus `settings`."""
    env = {name: value for name, value in os.environ.items() if name not in APP_VARIABLES}
    env.update(settings)
    return env
