"""Housekeeping deletes ended sessions and expired idempotency records, and nothing live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.worker.housekeeping import run_housekeeping
from tests.helpers import API, ApiUser, login


async def _count(app: FastAPI, table: str) -> int:
    async with app.state.database.engine.connect() as connection:
        result = await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        return int(result.scalar_one())


async def _set(app: FastAPI, statement: str, **values: object) -> None:
    async with app.state.database.engine.begin() as connection:
        await connection.execute(sa.text(statement), values)


async def test_sessions_ended_over_a_day_ago_are_deleted_and_live_ones_kept(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    await login(client, "alice")  # a second, live session
    logged_out = await login(client, "alice")
    token = logged_out.json()["access_token"]
    await client.post(f"{API}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    long_ago = datetime.now(UTC) - timedelta(days=2)
    await _set(
        app, "UPDATE user_session SET revoked_at = :t WHERE revoked_at IS NOT NULL", t=long_ago
    )
    assert await _count(app, "user_session") == 3

    removed = await run_housekeeping(app.state.database.sessions)

    assert removed["sessions"] == 1
    assert await _count(app, "user_session") == 2
    assert (await client.get(f"{API}/users/me", headers=alice.headers)).status_code == 200


async def test_a_session_revoked_just_now_is_kept_for_a_day(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    await client.post(f"{API}/auth/logout", headers=alice.headers)
    assert (await run_housekeeping(app.state.database.sessions))["sessions"] == 0
    assert await _count(app, "user_session") == 1


async def test_expired_idempotency_records_are_deleted_and_fresh_ones_kept(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    for key in ("old", "fresh"):
        response = await client.post(
            f"{API}/tasks",
            json={"title": key},
            headers={**alice.headers, "Idempotency-Key": key},
        )
        assert response.status_code == 201
    past = datetime.now(UTC) - timedelta(seconds=1)
    await _set(app, "UPDATE idempotency_record SET expires_at = :t WHERE key = 'old'", t=past)

    removed = await run_housekeeping(app.state.database.sessions)

    assert removed["idempotency_records"] == 1
    assert await _count(app, "idempotency_record") == 1
    assert await _count(app, "task") == 2
