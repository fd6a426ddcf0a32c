"""The reminder scan: who gets a `task_due` notification, when, and never twice.

Every test calls `scan_due_reminders` with an explicit `now` (a fixed instant far from the wall
clock), so the window `due_at - lead <= now <= due_at + lead` is tested at its exact edges.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.clock import utcnow
from taskhub.db.engine import create_database
from taskhub.db.runner import Database
from taskhub.notifications import repository as notification_repository
from taskhub.notifications.service import scan_due_reminders
from taskhub.redis_health import RedisBreaker
from taskhub.tables import TASK_DUE, Notification, Task
from taskhub.worker.in_process import reminder_scheduling
from tests.conftest import make_settings
from tests.helpers import API, ApiUser, create_task

NOW = datetime(2031, 3, 14, 9, 26, 53, tzinfo=UTC)
LEAD = 3600
LEAD_DELTA = timedelta(seconds=LEAD)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def scan(app: FastAPI, *, now: datetime = NOW, batch_size: int = 500) -> int:
    return await scan_due_reminders(
        app.state.database, lead_time_seconds=LEAD, now=now, batch_size=batch_size
    )


@dataclass(frozen=True)
class Reminder:
    id: uuid.UUID
    user_id: uuid.UUID
    task_id: uuid.UUID | None
    task_due_at: datetime | None
    kind: str
    message: str
    created_at: datetime
    read_at: datetime | None


_REMINDERS = sa.select(
    Notification.id,
    Notification.user_id,
    Notification.task_id,
    Notification.task_due_at,
    Notification.kind,
    Notification.message,
    Notification.created_at,
    Notification.read_at,
).order_by(Notification.task_due_at)


async def reminders(app: FastAPI) -> list[Reminder]:
    """Every notification in the database, whoever owns it."""
    database: Database = app.state.database
    return await database.records(_REMINDERS, {}, Reminder)


async def reminder_keys(app: FastAPI) -> Counter[tuple[uuid.UUID | None, datetime | None]]:
    return Counter((n.task_id, n.task_due_at) for n in await reminders(app))


async def seed_tasks(
    app: FastAPI, *, owner_id: str, due_ats: list[datetime], status: str = "todo"
) -> list[uuid.UUID]:
    """Insert tasks in one statement (faster than the API for dozens of them)."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "owner_id": uuid.UUID(owner_id),
            "creator_id": uuid.UUID(owner_id),
            "title": f"seeded {index}",
            "status": status,
            "priority": 2,
            "due_at": due_at,
            "created_at": now,
            "updated_at": now,
            "search_text": f"seeded {index}\n",
            # Every column the app writes: on PostgreSQL the runner applies no Python defaults.
            "labels": [],
            "label_keys": [],
            "version": 1,
        }
        for index, due_at in enumerate(due_ats)
    ]
    database: Database = app.state.database
    assert await database.count_many(sa.insert(Task).returning(Task.id), rows) == len(rows)
    return [row["id"] for row in rows]


async def patch_task(
    client: httpx.AsyncClient, user: ApiUser, task_id: str, payload: dict[str, Any]
) -> None:
    response = await client.patch(f"{API}/tasks/{task_id}", json=payload, headers=user.headers)
    assert response.status_code == 200, response.text


# --- the window ----------------------------------------------------------------------------------


async def test_task_due_within_lead_time_gets_one_notification(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    due = NOW + timedelta(minutes=30)
    task = await create_task(client, alice, title="file the report", due_at=iso(due))

    assert await scan(app) == 1

    [notification] = await reminders(app)
    assert notification.task_id == uuid.UUID(task["id"])
    assert notification.user_id == uuid.UUID(alice.id)
    assert notification.task_due_at == due
    assert notification.kind == TASK_DUE
    assert notification.created_at == NOW
    assert notification.read_at is None
    assert notification.message == 'Task "file the report" is due at 2031-03-14 09:56 UTC'
    # It is Alice's, not Bob's.
    mine = (await client.get(f"{API}/notifications", headers=alice.headers)).json()["items"]
    theirs = (await client.get(f"{API}/notifications", headers=bob.headers)).json()["items"]
    assert [n["task_id"] for n in mine] == [task["id"]]
    assert theirs == []


async def test_due_date_in_another_offset_is_compared_as_an_instant(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    # 30 minutes from NOW, written in UTC+05:30.
    due = (NOW + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    await create_task(client, alice, due_at=iso(due))
    assert await scan(app) == 1
    [notification] = await reminders(app)
    assert notification.task_due_at == due
    assert "09:56 UTC" in notification.message


async def test_due_exactly_at_now_plus_lead_is_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW + LEAD_DELTA))
    assert await scan(app) == 1


async def test_due_one_second_after_now_plus_lead_is_not_reminded_yet(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW + LEAD_DELTA + timedelta(seconds=1)))

    assert await scan(app) == 0
    assert await reminders(app) == []
    # One second later its time has come.
    assert await scan(app, now=NOW + timedelta(seconds=1)) == 1


async def test_overdue_by_less_than_lead_is_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW - timedelta(minutes=30)))
    assert await scan(app) == 1


async def test_overdue_by_exactly_lead_is_still_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW - LEAD_DELTA))
    assert await scan(app) == 1


async def test_overdue_by_more_than_lead_is_never_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW - LEAD_DELTA - timedelta(seconds=1)))

    assert await scan(app) == 0
    assert await scan(app, now=NOW + timedelta(days=1)) == 0
    assert await reminders(app) == []


async def test_task_without_due_date_is_never_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice)
    assert await scan(app) == 0


@pytest.mark.parametrize("status", ["todo", "in_progress"])
async def test_every_pending_status_is_reminded(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, status: str
) -> None:
    await create_task(client, alice, status=status, due_at=iso(NOW + timedelta(minutes=5)))
    assert await scan(app) == 1


async def test_done_task_gets_no_notification(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, status="done", due_at=iso(NOW + timedelta(minutes=30)))
    assert await scan(app) == 0
    assert await reminders(app) == []


# --- exactly once --------------------------------------------------------------------------------


async def test_running_the_scan_twice_still_gives_one_notification(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW + timedelta(minutes=30)))

    assert await scan(app) == 1
    assert await scan(app) == 0
    assert await scan(app, now=NOW + timedelta(minutes=20)) == 0
    assert len(await reminders(app)) == 1


async def test_changing_due_at_rearms_the_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first_due = NOW + timedelta(minutes=30)
    task = await create_task(client, alice, due_at=iso(first_due))
    assert await scan(app) == 1

    second_due = NOW + timedelta(hours=3)
    await patch_task(client, alice, task["id"], {"due_at": iso(second_due)})
    later = NOW + timedelta(hours=2, minutes=30)
    assert await scan(app, now=later) == 1
    assert await scan(app, now=later) == 0

    keys = await reminder_keys(app)
    task_id = uuid.UUID(task["id"])
    assert keys == Counter({(task_id, first_due): 1, (task_id, second_due): 1})


async def test_clearing_due_at_stops_the_reminder(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, due_at=iso(NOW + timedelta(hours=2)))
    await patch_task(client, alice, task["id"], {"due_at": None})
    assert await scan(app, now=NOW + timedelta(hours=2)) == 0


async def test_marking_done_before_the_reminder_time_prevents_it(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    due = NOW + timedelta(hours=2)
    task = await create_task(client, alice, due_at=iso(due))
    assert await scan(app) == 0  # not yet

    await patch_task(client, alice, task["id"], {"status": "done"})
    assert await scan(app, now=due - timedelta(minutes=30)) == 0
    assert await scan(app, now=due) == 0
    assert await reminders(app) == []


async def test_reopening_a_done_task_within_the_window_reminds_it(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, status="done", due_at=iso(NOW + timedelta(minutes=30)))
    assert await scan(app) == 0
    await patch_task(client, alice, task["id"], {"status": "todo"})
    assert await scan(app) == 1


# --- deletion ------------------------------------------------------------------------------------


async def test_deleting_the_task_deletes_its_notifications(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, due_at=iso(NOW + timedelta(minutes=30)))
    other = await create_task(client, alice, due_at=iso(NOW + timedelta(minutes=40)))
    assert await scan(app) == 2

    response = await client.delete(f"{API}/tasks/{task['id']}", headers=alice.headers)
    assert response.status_code == 204

    assert [n.task_id for n in await reminders(app)] == [uuid.UUID(other["id"])]


async def test_deleting_the_user_deletes_their_notifications(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    await create_task(client, alice, due_at=iso(NOW + timedelta(minutes=30)))
    bobs = await create_task(client, bob, due_at=iso(NOW + timedelta(minutes=30)))
    assert await scan(app) == 2

    response = await client.delete(f"{API}/users/me", headers=alice.headers)
    assert response.status_code == 204

    remaining = await reminders(app)
    assert [(n.user_id, n.task_id) for n in remaining] == [
        (uuid.UUID(bob.id), uuid.UUID(bobs["id"]))
    ]


# --- batches and concurrency ---------------------------------------------------------------------


async def test_every_due_task_gets_exactly_one_across_batches(app: FastAPI, alice: ApiUser) -> None:
    # Ten tasks, several sharing a due date, so batch boundaries fall inside ties (keyset by id).
    due_ats = [NOW + timedelta(minutes=index // 3) for index in range(10)]
    task_ids = await seed_tasks(app, owner_id=alice.id, due_ats=due_ats)

    assert await scan(app, batch_size=3) == 10

    keys = await reminder_keys(app)
    assert sorted(task_id for task_id, _ in keys) == sorted(task_ids)
    assert set(keys.values()) == {1}


async def test_batches_skip_done_and_already_reminded_tasks(app: FastAPI, alice: ApiUser) -> None:
    pending = await seed_tasks(
        app, owner_id=alice.id, due_ats=[NOW + timedelta(seconds=i) for i in range(7)]
    )
    await seed_tasks(
        app,
        owner_id=alice.id,
        due_ats=[NOW + timedelta(seconds=i) for i in range(5)],
        status="done",
    )
    assert await scan(app, batch_size=2) == 7
    assert await scan(app, batch_size=2) == 0

    late = await seed_tasks(app, owner_id=alice.id, due_ats=[NOW + timedelta(seconds=3)])
    assert await scan(app, batch_size=2) == 1
    assert sorted(task_id for task_id, _ in await reminder_keys(app)) == sorted(pending + late)


@pytest.mark.parametrize("batch_size", [1, 4, 500])
async def test_concurrent_scans_create_exactly_one_per_task(
    app: FastAPI, alice: ApiUser, bob: ApiUser, batch_size: int
) -> None:
    due_ats = [NOW + timedelta(seconds=7 * index) for index in range(20)]
    task_ids = await seed_tasks(app, owner_id=alice.id, due_ats=due_ats)
    task_ids += await seed_tasks(app, owner_id=bob.id, due_ats=due_ats)

    # Two scans on the same pool: two connections, so on PostgreSQL they truly overlap.
    created = await asyncio.gather(
        scan(app, batch_size=batch_size), scan(app, batch_size=batch_size)
    )

    assert sum(created) == 40
    keys = await reminder_keys(app)
    assert sorted(task_id for task_id, _ in keys) == sorted(task_ids)
    assert set(keys.values()) == {1}


# --- a task that vanishes mid-scan ---------------------------------------------------------------


def reminder_row(*, user_id: str, task_id: uuid.UUID, due_at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": uuid.UUID(user_id),
        "task_id": task_id,
        "task_due_at": due_at,
        "kind": TASK_DUE,
        "message": "due soon",
        "created_at": NOW,
    }


async def test_task_deleted_between_read_and_insert_does_not_break_the_batch(
    app: FastAPI, alice: ApiUser
) -> None:
    due = NOW + timedelta(minutes=10)
    [kept, already] = await seed_tasks(app, owner_id=alice.id, due_ats=[due, due])
    assert await scan(app) == 2
    await app.state.database.execute(
        sa.delete(Notification).where(Notification.task_id == kept), {}
    )

    vanished = uuid.uuid4()  # a task the batch read, deleted before the insert
    rows = [
        reminder_row(user_id=alice.id, task_id=vanished, due_at=due),
        reminder_row(user_id=alice.id, task_id=already, due_at=due),
        reminder_row(user_id=alice.id, task_id=kept, due_at=due),
    ]
    created = await notification_repository.insert_reminders(app.state.database, rows)

    assert created == 1
    assert await reminder_keys(app) == Counter({(already, due): 1, (kept, due): 1})


async def test_insert_reminders_with_nothing_to_insert_is_a_no_op(app: FastAPI) -> None:
    assert await notification_repository.insert_reminders(app.state.database, []) == 0


# --- the in-process timer (no REDIS_URL, or Redis unreachable) ---------------------------------

SHARED_REDIS_URL = "redis://127.0.0.1:6379/11"  # the machine's Redis; only PINGed here
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


async def wait_for_reminders(app: FastAPI, count: int) -> int:
    found = 0
    for _ in range(100):  # up to ~5 s
        found = len(await reminders(app))
        if found >= count:
            break
        await asyncio.sleep(0.05)
    return found


async def test_without_redis_the_api_process_scans_on_a_timer(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, database_url: str
) -> None:
    await create_task(client, alice, due_at=iso(utcnow() + timedelta(minutes=10)))
    settings = make_settings(database_url, REMINDER_SCAN_INTERVAL=1)
    database: Database = app.state.database

    async with reminder_scheduling(settings, database, None):
        found = await wait_for_reminders(app, 1)

    assert found == 1


async def test_with_redis_answering_the_api_process_leaves_the_scan_to_celery(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, database_url: str
) -> None:
    await create_task(client, alice, due_at=iso(utcnow() + timedelta(minutes=10)))
    with_redis = make_settings(database_url, REDIS_URL=SHARED_REDIS_URL)
    redis = RedisBreaker(SHARED_REDIS_URL, timeout=2.0)
    try:
        async with reminder_scheduling(with_redis, app.state.database, redis):
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()

    assert await reminders(app) == []
    assert not redis.is_open


async def test_while_redis_is_unreachable_the_api_process_scans_too(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, database_url: str
) -> None:
    # Celery beat cannot send the scan without its broker: the API covers for it meanwhile.
    await create_task(client, alice, due_at=iso(utcnow() + timedelta(minutes=10)))
    with_redis = make_settings(database_url, REDIS_URL=UNREACHABLE_REDIS_URL)
    redis = RedisBreaker(UNREACHABLE_REDIS_URL, timeout=0.5)
    try:
        async with reminder_scheduling(with_redis, app.state.database, redis):
            found = await wait_for_reminders(app, 1)
    finally:
        await redis.aclose()

    assert found == 1
    assert redis.is_open


async def test_a_failing_scan_does_not_stop_the_timer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the schema: every scan fails, and the loop must keep scanning.
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", REMINDER_SCAN_INTERVAL=1)
    database = create_database(settings, pooled=False)
    failures: list[logging.LogRecord] = []
    try:
        with caplog.at_level(logging.ERROR, logger="taskhub.worker.in_process"):
            async with reminder_scheduling(settings, database, None):
                for _ in range(60):  # up to ~3 s: two failed scans, one interval apart
                    failures = [
                        r for r in caplog.records if "reminder scan failed" in r.getMessage()
                    ]
                    if len(failures) >= 2:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await database.dispose()
    assert len(failures) >= 2
