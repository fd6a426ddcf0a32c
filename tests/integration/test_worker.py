"""The reminder scan run by real Celery worker and beat processes on the machine's Redis, against
the session's database (the SQLite file or PostgreSQL alike).

Redis must be running (CI starts it): without it these tests fail, they are never skipped.
Each test gets Redis DB 11 under a key prefix of its own (CELERY_BROKER_KEY_PREFIX), cleared
before and after: two test runs at once on one machine (say, two checkouts) cannot take each
other's jobs, which flushing a shared database number between tests could not promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.clock import utcnow
from taskhub.config import Settings
from taskhub.tables import Notification, Task
from taskhub.worker.celery_app import create_celery
from tests.conftest import make_settings
from tests.helpers import API, ApiUser, create_task
from tests.hermetic import process_env

REDIS_URL = "redis://127.0.0.1:6379/11"  # not the app's DB 0; keys are prefixed per test
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "taskhub.worker.celery_app"]
SCAN_JOB = "taskhub.scan_due_reminders"
JOB_LINE = f"Task {SCAN_JOB}["
KILL_TEST_TASKS = 3000
# Small batches make the scan commit often, so the worker is killed with part of it done.
KILL_TEST_BATCH_SIZE = 20


def clear_redis(key_prefix: str, url: str = REDIS_URL) -> None:
    """Delete the keys under this prefix; fails the test (never skips it) without Redis."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {url} (these tests need it): {exc}")
    finally:
        client.close()


class CeleryProcesses:
    """Worker and beat subprocesses, each in its own process group, with their output in files."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start_worker(self, name: str, **extra_env: str) -> subprocess.Popen[bytes]:
        return self._start(
            name,
            [
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                # Nothing to gossip with; skipping these saves seconds at start-up.
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={name}-{uuid.uuid4().hex[:8]}@%h",
            ],
            extra_env,
        )

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self._start(
            "beat",
            ["beat", "--loglevel=INFO", f"--schedule={self.folder / 'celerybeat-schedule'}"],
            {},
        )

    def _start(
        self, name: str, args: list[str], extra_env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [*CELERY, *args],
            cwd=PROJECT_ROOT,
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches the pool children
        )
        self.running.append((process, log))
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the whole group at once: the worker gets no chance to clean up or re-queue."""
        _killpg(process, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGKILL every group: a graceful shutdown would only add seconds to each test, and the
        Redis keys of the test are deleted anyway."""
        for process, log in self.running:
            try:
                _killpg(process, signal.SIGKILL)
                process.wait(timeout=10)
            finally:
                log.close()
        self.running.clear()


def _killpg(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while the leader is not reaped yet: until then its pid (the group id) cannot be reused.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


@pytest.fixture
def broker_key_prefix() -> Iterator[str]:
    """A fresh key prefix; each test clears it first, in its own body, so that a missing Redis
    fails the test itself."""
    prefix = f"taskhub-test-{uuid.uuid4().hex}:"
    yield prefix
    with contextlib.suppress(redis.ConnectionError, pytest.fail.Exception):
        clear_redis(prefix)


@pytest.fixture
def celery_processes(
    tmp_path: Path, database_url: str, settings: Settings, broker_key_prefix: str
) -> Iterator[CeleryProcesses]:
    env = process_env(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        JWT_SECRET=settings.JWT_SECRET.get_secret_value(),
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_KEY_PREFIX=broker_key_prefix,
        REMINDER_SCAN_INTERVAL="1",
        REMINDER_LEAD_TIME="3600",
        REMINDER_SCAN_BATCH_SIZE="500",
        PYTHONUNBUFFERED="1",
    )
    processes = CeleryProcesses(tmp_path, env)
    try:
        yield processes
    finally:
        processes.stop_all()


async def notification_count(app: FastAPI) -> int:
    count = await app.state.database.scalar(
        sa.select(sa.func.count()).select_from(Notification), {}
    )
    return int(count or 0)


async def test_worker_and_beat_create_exactly_one_reminder(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: ApiUser,
    celery_processes: CeleryProcesses,
    broker_key_prefix: str,
) -> None:
    clear_redis(broker_key_prefix)
    task = await create_task(client, alice, due_at=(utcnow() + timedelta(minutes=10)).isoformat())

    celery_processes.start_worker("worker")
    celery_processes.start_beat()

    items: list[dict[str, object]] = []
    for _ in range(100):  # up to ~20 s, start-up included
        response = await client.get(f"{API}/notifications", headers=alice.headers)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items:
            break
        await asyncio.sleep(0.2)
    assert [n["task_id"] for n in items] == [task["id"]], celery_processes.log("worker")

    # Two more scans run to completion; the reminder is still there, once.
    seen = succeeded_scans(celery_processes)
    for _ in range(50):  # up to ~10 s
        if succeeded_scans(celery_processes) >= seen + 2:
            break
        await asyncio.sleep(0.2)
    assert succeeded_scans(celery_processes) >= seen + 2, celery_processes.log("worker")
    response = await client.get(f"{API}/notifications", headers=alice.headers)
    assert [n["task_id"] for n in response.json()["items"]] == [task["id"]]


def succeeded_scans(processes: CeleryProcesses, worker: str = "worker") -> int:
    """How many scans the worker has logged as finished ("Task ...[id] succeeded in ...")."""
    return sum(
        1 for line in processes.log(worker).splitlines() if JOB_LINE in line and "succeeded" in line
    )


async def seed_due_tasks(app: FastAPI, *, owner_id: str, count: int) -> None:
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "owner_id": uuid.UUID(owner_id),
            "title": f"task {index}",
            "status": "todo",
            "priority": 2,
            "due_at": now + timedelta(minutes=10, milliseconds=index),
            "created_at": now,
            "updated_at": now,
            "search_text": f"task {index}\n",
            "creator_id": uuid.UUID(owner_id),
            "labels": [],
            "label_keys": [],
            "version": 1,
        }
        for index in range(count)
    ]
    inserted = await app.state.database.count_many(sa.insert(Task).returning(Task.id), rows)
    assert inserted == count


def send_scan_job(database_url: str, key_prefix: str) -> None:
    settings = make_settings(database_url, REDIS_URL=REDIS_URL, CELERY_BROKER_KEY_PREFIX=key_prefix)
    celery = create_celery(settings)
    try:
        celery.send_task(SCAN_JOB)
    finally:
        celery.close()


async def test_worker_killed_mid_scan_leaves_exactly_one_reminder_per_task(
    app: FastAPI,
    alice: ApiUser,
    celery_processes: CeleryProcesses,
    database_url: str,
    broker_key_prefix: str,
) -> None:
    clear_redis(broker_key_prefix)
    await seed_due_tasks(app, owner_id=alice.id, count=KILL_TEST_TASKS)
    small_batches = {"REMINDER_SCAN_BATCH_SIZE": str(KILL_TEST_BATCH_SIZE)}

    doomed = celery_processes.start_worker("doomed", **small_batches)
    send_scan_job(database_url, broker_key_prefix)
    partial = 0
    for _ in range(1000):  # up to ~20 s, start-up included
        partial = await notification_count(app)
        if partial > 0:
            break
        await asyncio.sleep(0.02)
    celery_processes.kill(doomed)
    partial = await notification_count(app)
    assert 0 < partial < KILL_TEST_TASKS, celery_processes.log("doomed")

    # Redis would re-deliver the unacknowledged job only after the visibility timeout (an hour):
    # the next scan is what completes the work.
    celery_processes.start_worker("successor")  # default batch size: 500
    send_scan_job(database_url, broker_key_prefix)
    for _ in range(150):  # up to ~30 s, start-up included
        if succeeded_scans(celery_processes, "successor") >= 1:
            break
        await asyncio.sleep(0.2)
    assert succeeded_scans(celery_processes, "successor") >= 1, celery_processes.log("successor")

    database = app.state.database
    per_key = await database.records(
        sa.select(Notification.task_id, Notification.task_due_at, sa.func.count()).group_by(
            Notification.task_id, Notification.task_due_at
        ),
        {},
        lambda *row: row,
    )
    reminded = set(
        await database.records(sa.select(Notification.task_id).distinct(), {}, lambda id_: id_)
    )
    tasks = set(await database.records(sa.select(Task.id), {}, lambda id_: id_))
    assert sum(count for _, _, count in per_key) == KILL_TEST_TASKS
    assert {count for _, _, count in per_key} == {1}
    assert reminded == tasks
