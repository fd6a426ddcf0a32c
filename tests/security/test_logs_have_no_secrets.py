"""No log line, at any level, carries a password, a token, a password hash or the JWT secret.

Every endpoint is driven, failures included, with recognisable secrets while everything logged
anywhere in the process is captured at DEBUG: through caplog (the raw records, arguments and
extras included) and through a handler rendering `taskhub.logs.JsonFormatter`, the production
format, so that extras and exception text are checked as they would be written.
"""

from __future__ import annotations

import io
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRouter

from taskhub.access.grants import ANY_TOKEN
from taskhub.auth.dependencies import needs
from taskhub.db.runner import Database, IntegrityViolation
from taskhub.logs import JsonFormatter
from taskhub.main import create_app
from taskhub.tables import TASK_DUE, Notification, User
from tests.conftest import LEAK_PATTERNS, client_of, make_settings
from tests.helpers import API, assert_problem

PASSWORD = "Pw-CANARY-9f3a-rosemary-lighthouse"
NEW_PASSWORD = "Pw-CANARY-2c7e-juniper-causeway"
WRONG_PASSWORD = "Pw-CANARY-0b1d-wrong-guess"
TOO_LONG_PASSWORD = "Pw-CANARY-5e8a-" + "x" * 80  # over bcrypt's 72 bytes: a 422
USERNAME = "canary_user"


@dataclass
class Secrets:
    """Everything that must never reach a log line, gathered while the flow runs."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        assert value, name
        self.values[name] = value

    def add_token(self, name: str, token: str) -> None:
        self.add(name, token)
        self.add(f"{name} signature", token.rsplit(".", 1)[-1])


@dataclass
class LogCapture:
    caplog: pytest.LogCaptureFixture
    json_lines: io.StringIO

    def lines(self) -> list[str]:
        """Each captured record as raw data (message, arguments, extras, exception) and as the
        JSON line production would write."""
        formatter = logging.Formatter()
        raw = []
        for record in self.caplog.records:
            exception = formatter.formatException(record.exc_info) if record.exc_info else ""
            raw.append(f"{record.getMessage()} {vars(record)!r} {exception}")
        return raw + self.json_lines.getvalue().splitlines()


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogCapture]:
    """Everything any logger emits, DEBUG upwards, for the rest of the test."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield LogCapture(caplog, stream)
    finally:
        root.removeHandler(handler)


def assert_no_secret_logged(capture: LogCapture, secrets: Secrets) -> None:
    lines = capture.lines()
    assert lines, "nothing was logged: the capture is not working"
    found = [
        f"{name} in: {line[:300]}"
        for line in lines
        for name, value in secrets.values.items()
        if value in line
    ]
    found += [
        f"a {kind} in: {line[:300]}"
        for line in lines
        for kind, pattern in LEAK_PATTERNS.items()
        if kind.endswith("hash") and pattern.search(line)
    ]
    assert not found, "secrets reached the logs:\n" + "\n".join(found)


async def password_hash(app: FastAPI) -> str:
    value = await app.state.database.scalar(
        sa.select(User.password_hash).where(User.username == USERNAME), {}
    )
    assert isinstance(value, str)
    assert value.startswith("$2")
    return value


def tokens(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["access_token"], body["refresh_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_driving_every_endpoint_logs_no_secret(
    app: FastAPI, client: httpx.AsyncClient, captured_logs: LogCapture
) -> None:
    secrets = Secrets()
    for name, value in {
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "over-long password": TOO_LONG_PASSWORD,
        "JWT_SECRET": app.state.settings.JWT_SECRET.get_secret_value(),
    }.items():
        secrets.add(name, value)

    # Operations.
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).status_code == 200

    # Registration, then its failures: the password is in each rejected body.
    registered = await client.post(
        f"{API}/auth/register", json={"username": USERNAME, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    secrets.add("password hash", await password_hash(app))
    for body in (
        {"username": "canary_two", "password": TOO_LONG_PASSWORD},
        {"username": "canary_two", "password": PASSWORD, "is_admin": True},
        {"username": "x", "password": PASSWORD},
    ):
        assert_problem(await client.post(f"{API}/auth/register", json=body), 422)
    assert_problem(
        await client.post(
            f"{API}/auth/register", json={"username": USERNAME, "password": PASSWORD}
        ),
        409,
    )

    # Login as a form and as JSON, and failing logins.
    form_access, form_refresh = tokens(
        await client.post(f"{API}/auth/login", data={"username": USERNAME, "password": PASSWORD})
    )
    json_access, json_refresh = tokens(
        await client.post(f"{API}/auth/login", json={"username": USERNAME, "password": PASSWORD})
    )
    secrets.add_token("form access token", form_access)
    secrets.add_token("form refresh token", form_refresh)
    secrets.add_token("json access token", json_access)
    secrets.add_token("json refresh token", json_refresh)
    assert_problem(
        await client.post(
            f"{API}/auth/login", data={"username": USERNAME, "password": WRONG_PASSWORD}
        ),
        401,
    )
    assert_problem(
        await client.post(
            f"{API}/auth/login", data={"username": "nobody_here", "password": PASSWORD}
        ),
        401,
    )
    assert_problem(await client.post(f"{API}/auth/login", json={"password": PASSWORD}), 422)
    assert_problem(
        await client.post(
            f"{API}/auth/login",
            content=f'{{"username": "{USERNAME}", "password": "{PASSWORD}"',
            headers={"Content-Type": "application/json"},
        ),
        400,
    )

    # Refresh, then the spent token again (reuse: the session is revoked and a warning logged).
    refreshed_access, refreshed_refresh = tokens(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": json_refresh})
    )
    secrets.add_token("refreshed access token", refreshed_access)
    secrets.add_token("refreshed refresh token", refreshed_refresh)
    assert_problem(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": json_refresh}), 401
    )
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(refreshed_access)), 401)
    assert_problem(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": "not-a-token"}), 401
    )

    # The account, its sessions, bad tokens.
    me = bearer(form_access)
    assert (await client.get(f"{API}/users/me", headers=me)).status_code == 200
    second_access, _ = tokens(
        await client.post(f"{API}/auth/login", data={"username": USERNAME, "password": PASSWORD})
    )
    secrets.add_token("second access token", second_access)
    sessions = await client.get(f"{API}/users/me/sessions", headers=me)
    assert sessions.status_code == 200
    others = [item["id"] for item in sessions.json()["items"] if not item["current"]]
    assert others
    for session_id in others:
        revoked = await client.delete(f"{API}/users/me/sessions/{session_id}", headers=me)
        assert revoked.status_code == 204
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(second_access)), 401)
    assert_problem(await client.delete(f"{API}/users/me/sessions/{uuid.uuid4()}", headers=me), 404)
    assert_problem(await client.get(f"{API}/users/me", headers=bearer("garbage.token.here")), 401)
    assert_problem(
        await client.get(f"{API}/users/me", headers={"Authorization": f"Basic {PASSWORD}"}), 401
    )

    # Tasks: the whole CRUD, with an idempotency key, and a 404.
    created = await client.post(
        f"{API}/tasks",
        json={"title": "canary task", "due_at": "2031-01-01T09:00:00Z"},
        headers={**me, "Idempotency-Key": "canary-key-1"},
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert (await client.get(f"{API}/tasks", headers=me)).status_code == 200
    assert (await client.get(f"{API}/tasks/{task_id}", headers=me)).status_code == 200
    patched = await client.patch(f"{API}/tasks/{task_id}", json={"status": "done"}, headers=me)
    assert patched.status_code == 200
    assert_problem(await client.get(f"{API}/tasks/{uuid.uuid4()}", headers=me), 404)

    # Notifications: one reminder, inserted as the worker would, listed and read.
    notification_id = uuid.uuid4()
    await app.state.database.execute(
        sa.insert(Notification).values(
            id=notification_id,
            user_id=uuid.UUID(registered.json()["id"]),
            task_id=uuid.UUID(task_id),
            task_due_at=datetime(2031, 1, 1, 9, tzinfo=UTC),
            kind=TASK_DUE,
            message="canary task is due soon",
            created_at=datetime.now(UTC),
        ),
        {},
    )
    assert (await client.get(f"{API}/notifications", headers=me)).status_code == 200
    read = await client.post(f"{API}/notifications/{notification_id}/read", headers=me)
    assert read.status_code == 200
    assert (await client.delete(f"{API}/tasks/{task_id}", headers=me)).status_code == 204

    # Password change: wrong current password, a rejected new one, then the real change.
    change = f"{API}/users/me/password"
    assert_problem(
        await client.post(
            change,
            json={"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
            headers=me,
        ),
        401,
    )
    assert_problem(
        await client.post(
            change,
            json={"current_password": PASSWORD, "new_password": TOO_LONG_PASSWORD},
            headers=me,
        ),
        422,
    )
    changed = await client.post(
        change, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=me
    )
    assert changed.status_code == 204, changed.text
    secrets.add("new password hash", await password_hash(app))

    # Logout, a request with the ended session, then delete the account.
    assert (await client.post(f"{API}/auth/logout", headers=me)).status_code == 204
    assert_problem(await client.get(f"{API}/users/me", headers=me), 401)
    last_access, last_refresh = tokens(
        await client.post(
            f"{API}/auth/login", data={"username": USERNAME, "password": NEW_PASSWORD}
        )
    )
    secrets.add_token("last access token", last_access)
    secrets.add_token("last refresh token", last_refresh)
    gone = await client.delete(f"{API}/users/me", headers=bearer(last_access))
    assert gone.status_code == 204
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(last_access)), 401)
    assert_problem(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": last_refresh}), 401
    )

    # The capture saw the app's own lines, extras rendered, at DEBUG level.
    logging.getLogger("taskhub.tests").debug("debug capture probe")
    messages = [record.getMessage() for record in captured_logs.caplog.records]
    assert "debug capture probe" in messages
    assert "user registered" in messages
    assert "refresh token reuse detected; session revoked" in messages
    json_entries = [orjson.loads(line) for line in captured_logs.json_lines.getvalue().splitlines()]
    assert any("user_id" in entry for entry in json_entries), "extras were not rendered"

    assert_no_secret_logged(captured_logs, secrets)


@pytest.fixture
async def exploding_app(database_url: str) -> AsyncIterator[FastAPI]:
    """TaskHub with one more authenticated route that fails with an unexpected exception.

    Built before the test's log capture starts: create_app reconfigures the root logger.
    """
    application = create_app(make_settings(database_url))
    router = APIRouter(dependencies=[needs(ANY_TOKEN)])

    @router.get(f"{API}/explode")
    async def explode() -> dict[str, Any]:
        raise RuntimeError("something unexpected went wrong")

    application.include_router(router)
    yield application
    await application.state.database.dispose()


async def test_an_unhandled_exception_logs_no_authorization_header(
    exploding_app: FastAPI, captured_logs: LogCapture
) -> None:
    async with client_of(exploding_app) as http:
        registered = await http.post(
            f"{API}/auth/register", json={"username": USERNAME, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        access, refresh = tokens(
            await http.post(f"{API}/auth/login", data={"username": USERNAME, "password": PASSWORD})
        )
        response = await http.get(f"{API}/explode", headers=bearer(access))
        garbage = "Bearer-CANARY-7d41-not-a-token"
        rejected = await http.get(f"{API}/explode", headers=bearer(garbage))

    body = assert_problem(response, 500)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "something unexpected" not in response.text
    assert_problem(rejected, 401)

    failures = [record for record in captured_logs.caplog.records if record.exc_info]
    assert len(failures) == 1, "the unhandled exception was not logged with its traceback"
    assert failures[0].levelno == logging.ERROR
    logged = captured_logs.lines()
    assert any("something unexpected went wrong" in line for line in logged)
    assert any("Traceback (most recent call last)" in line for line in logged)

    secrets = Secrets()
    secrets.add_token("access token", access)
    secrets.add_token("refresh token", refresh)
    secrets.add("Authorization header", f"Bearer {access}")
    secrets.add("rejected token", garbage)
    secrets.add("password", PASSWORD)
    secrets.add("JWT_SECRET", exploding_app.state.settings.JWT_SECRET.get_secret_value())
    assert_no_secret_logged(captured_logs, secrets)


@pytest.mark.parametrize("refused", ["duplicate username", "missing username"])
async def test_a_database_error_does_not_carry_the_statements_values(
    app: FastAPI, refused: str
) -> None:
    """A database error that reaches the last-resort handler is logged with its text: that text
    must not include the statement's parameters (a password hash, here). PostgreSQL's own message
    would: the duplicate key, or the whole failing row of a NOT NULL violation."""
    planted_hash = "$2b$04$" + "C" * 53
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "username": "hash_owner",
        "password_hash": planted_hash,
        "created_at": datetime.now(UTC),
    }
    database: Database = app.state.database
    if refused == "duplicate username":
        await database.execute(sa.insert(User).values(**row), {})
        offending = {**row, "id": uuid.uuid4()}
    else:
        offending = {**row, "username": None}
    with pytest.raises(IntegrityViolation) as failure:
        await database.execute(sa.insert(User).values(**offending), {})
    text = "".join(traceback.format_exception(failure.value))
    assert "hash_owner" not in text
    assert planted_hash not in text
    assert str(offending["id"]) not in text
    # What was refused is still named (PostgreSQL's or SQLite's error class), nothing more.
    assert str(failure.value) in {"UniqueViolation", "NotNullViolation", "IntegrityError"}
    assert str(failure.value) in text
