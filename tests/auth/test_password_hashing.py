"""Password hashing under load: past HASH_QUEUE_LIMIT waiting hashes, login, registration and
password change are refused at once (503, Retry-After); unset, the limit lets an ordinary burst
through; and no database connection or transaction is held while a hash is computed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskhub.config import Settings
from taskhub.db.runner import Database
from taskhub.main import create_app
from taskhub.security import passwords
from tests.conftest import client_of, make_settings
from tests.helpers import API, DEFAULT_PASSWORD, ApiUser, assert_problem, make_user, register

NEW_PASSWORD = "quartz-meadow-lantern-7"
# Bounded waits, so that a missing protection fails the test instead of hanging it.
WAIT_SECONDS = 10.0


@pytest.fixture
async def limited(database_url: str, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose hashing queue holds one waiting hash (`app`: its teardown empties tables)."""
    application = create_app(make_settings(database_url, HASH_QUEUE_LIMIT=1))
    async with client_of(application) as http:
        yield http
    await application.state.database.dispose()


@contextmanager
def filled_hash_queue() -> Iterator[list[Future[bool]]]:
    """Every hashing thread busy and one hash waiting, until the block ends; yields the jobs
    that hold them."""
    release = threading.Event()
    pool = passwords._hashing_pool()
    held: list[Future[bool]] = [
        pool.submit(None, release.wait, WAIT_SECONDS) for _ in range(pool.threads + 1)
    ]
    try:
        yield held
    finally:
        release.set()
        for future in held:
            future.result(timeout=WAIT_SECONDS)


async def _refused_at_once(holding: list[Future[bool]], request: Awaitable[httpx.Response]) -> None:
    """Answered while the jobs filling the queue still hold it: without waiting for a thread."""
    response = await asyncio.wait_for(request, timeout=WAIT_SECONDS)

    assert not any(future.done() for future in holding)
    body = assert_problem(response, 503)
    assert body["detail"] == "Too many password checks are waiting; retry later"
    assert response.headers["retry-after"] == "1"


async def _until(condition: Callable[[], bool]) -> None:
    """Return once `condition` holds, looking again every few milliseconds (what it reads, such
    as the hash queue's count, has no event to wait on)."""
    while not condition():  # noqa: ASYNC110 - nothing to wait on: see above
        await asyncio.sleep(0.005)


class TestHashQueueLimit:
    async def test_login_is_503_at_once(self, limited: httpx.AsyncClient) -> None:
        await make_user(limited, "queued")
        with filled_hash_queue() as holding:
            await _refused_at_once(
                holding,
                limited.post(
                    f"{API}/auth/login", data={"username": "queued", "password": DEFAULT_PASSWORD}
                ),
            )

    async def test_login_of_an_unknown_user_is_503_at_once(
        self, limited: httpx.AsyncClient
    ) -> None:
        with filled_hash_queue() as holding:
            await _refused_at_once(
                holding,
                limited.post(
                    f"{API}/auth/login", data={"username": "nobody", "password": DEFAULT_PASSWORD}
                ),
            )

    async def test_registration_is_503_at_once_and_creates_nobody(
        self, limited: httpx.AsyncClient
    ) -> None:
        payload = {"username": "newcomer", "password": DEFAULT_PASSWORD}
        with filled_hash_queue() as holding:
            await _refused_at_once(holding, limited.post(f"{API}/auth/register", json=payload))

        retried = await limited.post(f"{API}/auth/register", json=payload)
        assert retried.status_code == 201, retried.text

    async def test_password_change_is_503_at_once(self, limited: httpx.AsyncClient) -> None:
        user = await make_user(limited, "changer")
        with filled_hash_queue() as holding:
            await _refused_at_once(
                holding,
                limited.post(
                    f"{API}/users/me/password",
                    json={"current_password": user.password, "new_password": NEW_PASSWORD},
                    headers=user.headers,
                ),
            )


class TestTheDefaultQueue:
    async def test_ten_concurrent_logins_of_one_user_at_cost_4_all_succeed(
        self, app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HASH_QUEUE_LIMIT unset: as many may wait as start within HASH_QUEUE_WAIT (1 s) at the
        configured cost, so an ordinary burst gets no 503 (contract, "Abuse and faults"). Each
        hash is held until every login holds its place in the queue or has its answer: all ten
        are in the queue at once, however fast the machine."""
        settings: Settings = app.state.settings
        assert settings.HASH_QUEUE_LIMIT is None
        assert settings.bcrypt_rounds == 4
        registered = await register(client, "burst", DEFAULT_PASSWORD)
        assert registered.status_code == 201, registered.text
        release = threading.Event()
        verify = passwords._verify_sync

        def held_until_released(*args: Any) -> Any:
            release.wait(WAIT_SECONDS)
            return verify(*args)

        monkeypatch.setattr(passwords, "_verify_sync", held_until_released)
        pool = passwords._hashing_pool()
        logins = [
            asyncio.ensure_future(
                client.post(
                    f"{API}/auth/login", data={"username": "burst", "password": DEFAULT_PASSWORD}
                )
            )
            for _ in range(10)
        ]
        try:
            # Every login queued for a hash (or answered): a loose bound of seconds.
            await asyncio.wait_for(
                _until(lambda: pool._held + sum(login.done() for login in logins) >= len(logins)),
                timeout=WAIT_SECONDS,
            )
        finally:
            release.set()
        responses = await asyncio.gather(*logins)

        assert [response.status_code for response in responses] == [200] * 10


async def test_a_refused_login_or_registration_sends_no_statement_before_its_503(
    database_url: str, app: FastAPI
) -> None:
    """Refused before any other work: a flood of logins past the queue costs each one little
    more than its parsing (the early refusal in auth/service.py), not a query and a count."""
    application = create_app(make_settings(database_url, HASH_QUEUE_LIMIT=1))
    database: Database = application.state.database
    try:
        async with client_of(application) as http:
            await make_user(http, "flooder")
            with filled_hash_queue(), database.observed() as sent:
                login = await http.post(
                    f"{API}/auth/login", data={"username": "flooder", "password": DEFAULT_PASSWORD}
                )
                register = await http.post(
                    f"{API}/auth/register",
                    json={"username": "another", "password": DEFAULT_PASSWORD},
                )
            assert_problem(login, 503)
            assert_problem(register, 503)
            assert sent == []
    finally:
        await database.dispose()


class PausedHashes:
    """Each hash waits, on its thread, until the test has looked at the database."""

    def __init__(self) -> None:
        self._arrived = threading.Semaphore(0)
        self._go = threading.Semaphore(0)

    def wrap(self, work: Callable[..., Any]) -> Callable[..., Any]:
        def paused(*args: Any) -> Any:
            self._arrived.release()
            self._go.acquire(timeout=WAIT_SECONDS)
            return work(*args)

        return paused

    async def next_hash(self) -> None:
        started = await asyncio.to_thread(self._arrived.acquire, timeout=WAIT_SECONDS)
        assert started, "no hash started"

    def let_it_run(self) -> None:
        self._go.release()


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> PausedHashes:
    passwords._dummy_hash(settings.bcrypt_rounds)  # made at first use: made now, unpaused
    hashes = PausedHashes()
    monkeypatch.setattr(passwords, "_hash_sync", hashes.wrap(passwords._hash_sync))
    monkeypatch.setattr(passwords, "_verify_sync", hashes.wrap(passwords._verify_sync))
    return hashes


def _open_transactions(sent: list[tuple[str, Any]]) -> int:
    said = [sql for sql, _ in sent]
    return said.count("BEGIN") - said.count("COMMIT") - said.count("ROLLBACK")


class TestNothingHeldWhileHashing:
    """While each hash of the request runs, no connection is checked out of the pool and no
    transaction is open."""

    async def _hashes_hold_nothing(
        self,
        app: FastAPI,
        paused: PausedHashes,
        request: Awaitable[httpx.Response],
        *,
        hashes: int,
    ) -> httpx.Response:
        database: Database = app.state.database
        with database.observed() as sent:
            pending = asyncio.ensure_future(request)
            try:
                for _ in range(hashes):
                    await paused.next_hash()
                    stats = database.pool_stats()
                    assert stats is None or stats.in_use == 0, stats
                    assert _open_transactions(sent) == 0, sent
                    paused.let_it_run()
                return await asyncio.wait_for(pending, timeout=WAIT_SECONDS)
            finally:
                for _ in range(hashes):
                    paused.let_it_run()  # never leave a thread waiting
                if not pending.done():
                    pending.cancel()

    async def test_login(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, paused: PausedHashes
    ) -> None:
        login = client.post(
            f"{API}/auth/login", data={"username": alice.username, "password": alice.password}
        )
        response = await self._hashes_hold_nothing(app, paused, login, hashes=1)
        assert response.status_code == 200, response.text

    async def test_login_of_an_unknown_user(
        self, app: FastAPI, client: httpx.AsyncClient, paused: PausedHashes
    ) -> None:
        login = client.post(
            f"{API}/auth/login", data={"username": "nobody", "password": DEFAULT_PASSWORD}
        )
        response = await self._hashes_hold_nothing(app, paused, login, hashes=1)
        assert response.status_code == 401, response.text

    async def test_registration(
        self, app: FastAPI, client: httpx.AsyncClient, paused: PausedHashes
    ) -> None:
        register = client.post(
            f"{API}/auth/register", json={"username": "carol", "password": DEFAULT_PASSWORD}
        )
        response = await self._hashes_hold_nothing(app, paused, register, hashes=1)
        assert response.status_code == 201, response.text

    async def test_password_change(
        self, app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, paused: PausedHashes
    ) -> None:
        change = client.post(
            f"{API}/users/me/password",
            json={"current_password": alice.password, "new_password": NEW_PASSWORD},
            headers=alice.headers,
        )
        response = await self._hashes_hold_nothing(app, paused, change, hashes=2)
        assert response.status_code == 204, response.text
