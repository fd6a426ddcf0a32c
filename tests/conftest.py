"""Test harness: one real database per run (PostgreSQL when TEST_DATABASE_URL is set, else SQLite),
built by the Alembic migrations, emptied after every test so order never matters.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub import tables  # noqa: F401 - every table on the metadata
from taskhub.config import Settings, async_database_url
from taskhub.db.schema import Base
from taskhub.main import create_app
from taskhub.migrate import upgrade
from taskhub.ratelimit import RateLimiter
from tests.conformance import conformance_checker
from tests.helpers import ApiUser, make_user
from tests.hermetic import scrub_environment
from tests.private_servers import PrivateRedis, private_redis

scrub_environment()  # before anything reads it: the suite runs on its own settings only

# The servers and workers the tests start run this checkout's src/ too, not whichever copy the
# shared environment has installed (pytest's `pythonpath` covers this process).
SRC = Path(__file__).resolve().parents[1] / "src"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

# What no response may ever carry: a password hash (bcrypt or argon2) or a Python stack trace.
LEAK_PATTERNS = {
    "bcrypt hash": re.compile(r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}"),
    "argon2 hash": re.compile(r"\$argon2"),
    "stack trace": re.compile(r"Traceback \(most recent call last\)"),
    "stack frame": re.compile(r'File "/'),
}

TABLES = (
    "comment",
    "idempotency_record",
    "notification",
    "task",
    "project_member",
    "project",
    "refresh_token",
    "user_session",
    "access_token_project",
    "access_token",
    "user_account",
)


_EMPTY_TABLES = tuple(sa.delete(Base.metadata.tables[name]) for name in TABLES)


def _postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def pytest_report_header() -> str:
    url = _postgres_url()
    if url:
        return "database backend: PostgreSQL (TEST_DATABASE_URL)"
    return "database backend: SQLite (set TEST_DATABASE_URL=postgresql://... for PostgreSQL)"


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    """A migrated, empty database for the whole run (one per pytest-xdist worker)."""
    url = _postgres_url()
    if url is None:
        with tempfile.TemporaryDirectory(prefix="taskhub-test-") as folder:
            sqlite_url = f"sqlite:///{Path(folder) / 'test.db'}"
            upgrade(sqlite_url)
            yield sqlite_url
        return
    if worker_id == "master":  # not distributed: the database TEST_DATABASE_URL names
        _reset_postgres_schema(url)
        upgrade(url)
        yield url
        return
    worker_url = _create_sibling_database(url, suffix=worker_id)
    upgrade(worker_url)
    yield worker_url
    _drop_database(worker_url)


def _server_admin_url(url: str) -> sa.URL:
    return sa.make_url(async_database_url(url)).set(database="postgres")


def _create_sibling_database(url: str, *, suffix: str) -> str:
    """`<name>_<suffix>` on the same server, created afresh (the worker's own database)."""
    parsed = sa.make_url(url)
    name = f"{parsed.database}_{suffix}"
    admin = sa.create_engine(_server_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(_server_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres_schema(url: str) -> None:
    sync_url = async_database_url(url)  # psycopg 3 also works synchronously
    engine = sa.create_engine(sync_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "JWT_SECRET": "test-" + secrets.token_urlsafe(32),
        "LOG_FORMAT": "console",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    yield application
    await application.state.database.dispose()


def find_leaks(text: str) -> list[str]:
    """The names of the LEAK_PATTERNS found in `text`."""
    return [name for name, pattern in LEAK_PATTERNS.items() if pattern.search(text)]


def response_leaks(response: httpx.Response) -> list[str]:
    """LEAK_PATTERNS in a response's headers or body (the body must have been read)."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return find_leaks(headers + "\n" + response.content.decode("utf-8", errors="replace"))


def _refuse_leaks(response: httpx.Response, violations: list[str]) -> None:
    leaks = response_leaks(response)
    if leaks:
        request = response.request
        violations.append(f"{request.method} {request.url.path}: {', '.join(leaks)}")
        raise AssertionError(f"leaking response: {violations[-1]}")


def leak_scanner(violations: list[str]) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook: records a leaking response in `violations` and raises."""

    async def scan_for_leaks(response: httpx.Response) -> None:
        await response.aread()
        _refuse_leaks(response, violations)

    return scan_for_leaks


@asynccontextmanager
async def client_of(
    app: FastAPI | None,
    *,
    peer: tuple[str, int] | None = None,
    raise_app_exceptions: bool = False,
    base_url: str = "http://testserver",
) -> AsyncIterator[httpx.AsyncClient]:
    """The one way a test talks to TaskHub. Every response is scanned for password hashes and
    stack traces, and a 2xx JSON body must be what its route's response_model renders
    (tests/conformance.py). `peer` is the client's socket address. Without an app, the client
    speaks real HTTP to `base_url` (a served process): scanned, but not checked for conformance.
    """
    violations: list[str] = []
    hooks = [leak_scanner(violations)]
    transport: httpx.AsyncBaseTransport | None = None
    if app is not None:
        hooks.append(conformance_checker(app, violations))
        transport = httpx.ASGITransport(
            app=app,
            raise_app_exceptions=raise_app_exceptions,
            **({"client": peer} if peer is not None else {}),
        )
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url, event_hooks={"response": hooks}
    ) as http:
        yield http
    # Also fails a test that caught a hook's AssertionError.
    assert not violations, f"responses leaked or did not conform: {violations}"


@contextmanager
def served_client(
    base_url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """`client_of` for the synchronous tests of a served process: every response is scanned."""
    violations: list[str] = []

    def scan_for_leaks(response: httpx.Response) -> None:
        response.read()
        _refuse_leaks(response, violations)

    with httpx.Client(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        event_hooks={"response": [scan_for_leaks]},
    ) as http:
        yield http
    assert not violations, f"responses leaked secrets or stack traces: {violations}"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The shared app's client (`client_of`): every response scanned and checked."""
    async with client_of(app) as http:
        yield http


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app: FastAPI = request.getfixturevalue("app")
    app.state.rate_limiter = RateLimiter(app.state.settings)  # counts never leak between tests
    # DELETE, not TRUNCATE: on tables this small it is ten times faster on PostgreSQL.
    async with app.state.database.transaction() as tx:
        for statement in _EMPTY_TABLES:
            await tx.execute(statement, {})


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> ApiUser:
    return await make_user(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> ApiUser:
    return await make_user(client, "bob")


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    """A `redis-server` of the test's own on a free port, which it may stall or kill."""
    with private_redis() as server:
        yield server
