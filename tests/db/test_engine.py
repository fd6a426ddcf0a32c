"""The connections the app opens: on PostgreSQL every statement runs under DB_STATEMENT_TIMEOUT,
and one that PostgreSQL cancels for it is a 503 with Retry-After, never a 500 or a hang.
SQLite has no statement timeout: the setting is ignored there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from taskhub.db.engine import postgres_connect_args
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, assert_problem, create_task, make_user

STATEMENT_TIMEOUT = 1
# What a request costs besides its stuck statement, with room for a machine busy with other suites.
MARGIN = 1.0


def test_the_statement_timeout_is_set_on_every_connection_in_milliseconds() -> None:
    settings = make_settings("postgresql://u@127.0.0.1/db", DB_STATEMENT_TIMEOUT=1.5)

    options = postgres_connect_args(settings)["options"]

    assert options == "-c timezone=UTC -c statement_timeout=1500"


@pytest.fixture
async def impatient(app: FastAPI, database_url: str, is_postgres: bool) -> AsyncIterator[FastAPI]:
    """An app whose statements may run for STATEMENT_TIMEOUT s (`app`: the tables are emptied)."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite has no statement timeout (the setting is ignored)")
    application = create_app(make_settings(database_url, DB_STATEMENT_TIMEOUT=STATEMENT_TIMEOUT))
    yield application
    await application.state.database.dispose()


async def test_connections_run_under_the_statement_timeout(impatient: FastAPI) -> None:
    shown = await impatient.state.database.scalar(text("SHOW statement_timeout"), {})

    assert shown == f"{STATEMENT_TIMEOUT}s"


async def test_a_request_stuck_behind_a_row_lock_gets_503_within_the_timeout(
    impatient: FastAPI, database_url: str
) -> None:
    async with client_of(impatient) as http:
        alice = await make_user(http, "alice")
        task = await create_task(http, alice, title="locked")
        path = f"{API}/tasks/{task['id']}"

        # Another connection holds the task's row lock in an open transaction.
        holder = await psycopg.AsyncConnection.connect(database_url)
        async with holder, holder.transaction():
            await holder.execute("SELECT id FROM task WHERE id = %s FOR UPDATE", [task["id"]])
            started = time.monotonic()
            # Bounded: without a statement timeout the PATCH would wait for this lock forever.
            async with asyncio.timeout(STATEMENT_TIMEOUT + MARGIN + 5):
                stuck = await http.patch(path, json={"title": "edited"}, headers=alice.headers)
            waited = time.monotonic() - started

        assert_problem(stuck, 503)
        assert stuck.headers["retry-after"].isdigit()
        assert STATEMENT_TIMEOUT <= waited <= STATEMENT_TIMEOUT + MARGIN, f"{waited:.2f} s"
        # Nothing of it was applied, and the same request works once the lock is gone.
        assert (await http.get(path, headers=alice.headers)).json()["title"] == "locked"
        retried = await http.patch(path, json={"title": "edited"}, headers=alice.headers)
        assert retried.status_code == 200, retried.text
