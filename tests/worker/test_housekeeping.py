"""Housekeeping deletes ended sessions, long-expired access tokens and expired idempotency
records, and nothing live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.tables import AccessToken, IdempotencyRecord, UserSession
from taskhub.worker.housekeeping import run_housekeeping
from tests.helpers import API, ApiUser, login, make_token


async def _count(app: FastAPI, table: str) -> int:
    statement = sa.select(sa.func.count()).select_from(sa.table(table))
    return int(await app.state.database.scalar(statement, {}))


async def _set(app: FastAPI, statement: sa.Update) -> None:
    await app.state.database.execute(statement, {})


async def test_sessions_ended_over_a_day_ago_are_deleted_and_live_ones_kept(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    await login(client, "alice")  # a second, live session
    logged_out = await login(client, "alice")
    token = logged_out.json()["access_token"]
    await client.post(f"{API}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    long_ago = datetime.now(UTC) - timedelta(days=2)
    await _set(
        app,
        sa.update(UserSession)
        .where(UserSession.revoked_at.is_not(None))
        .values(revoked_at=long_ago),
    )
    assert await _count(app, "user_session") == 3

    removed = await run_housekeeping(app.state.database)

    assert removed["sessions"] == 1
    assert await _count(app, "user_session") == 2
    assert (await client.get(f"{API}/users/me", headers=alice.headers)).status_code == 200


async def test_a_session_revoked_just_now_is_kept_for_a_day(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    await client.post(f"{API}/auth/logout", headers=alice.headers)
    assert (await run_housekeeping(app.state.database))["sessions"] == 0
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
    await _set(
        app,
        sa.update(IdempotencyRecord).where(IdempotencyRecord.key == "old").values(expires_at=past),
    )

    removed = await run_housekeeping(app.state.database)

    assert removed["idempotency_records"] == 1
    assert await _count(app, "idempotency_record") == 1
    assert await _count(app, "task") == 2


async def test_access_tokens_expired_over_a_month_ago_are_deleted_and_others_kept(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    for name in ("long expired", "just expired", "live"):
        await make_token(client, alice, "tasks:read", name=name)
    now = datetime.now(UTC)
    for name, expired_at in (("long expired", now - timedelta(days=31)), ("just expired", now)):
        await _set(
            app,
            sa.update(AccessToken).where(AccessToken.name == name).values(expires_at=expired_at),
        )

    removed = await run_housekeeping(app.state.database)

    assert removed["access_tokens"] == 1
    listed = (await client.get(f"{API}/tokens", headers=alice.headers)).json()["items"]
    assert sorted(token["name"] for token in listed) == ["just expired", "live"]
