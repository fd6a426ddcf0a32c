"""Admission: past MAX_CONCURRENT_REQUESTS, API requests wait their turn in order, and one that
waits longer than REQUEST_QUEUE_TIMEOUT is shed with a 503; probes are never held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from taskhub.http.admission import AdmissionGate, Overloaded
from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, DEFAULT_PASSWORD, assert_problem


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class TestAdmissionGate:
    async def test_lets_waiters_in_first_come_first_served(self) -> None:
        gate = AdmissionGate(limit=1, timeout=5)
        await gate.enter()
        admitted: list[int] = []

        async def wait_then_note(number: int) -> None:
            await gate.enter()
            admitted.append(number)

        waiters = []
        for number in range(3):
            waiters.append(asyncio.create_task(wait_then_note(number)))
            await _settle()
        for _ in range(3):
            gate.leave()
            await _settle()
        await asyncio.gather(*waiters)

        assert admitted == [0, 1, 2]

    async def test_is_overloaded_after_waiting_its_timeout(self) -> None:
        gate = AdmissionGate(limit=1, timeout=0.05)
        await gate.enter()

        with pytest.raises(Overloaded):
            await gate.enter()

    async def test_a_cancelled_waiter_takes_no_place(self) -> None:
        gate = AdmissionGate(limit=1, timeout=5)
        await gate.enter()
        cancelled = asyncio.create_task(gate.enter())
        await _settle()
        cancelled.cancel()
        await _settle()
        gate.leave()

        await asyncio.wait_for(gate.enter(), timeout=1)  # the place went back, not to the cancelled

    async def test_an_expired_waiter_takes_no_place(self) -> None:
        gate = AdmissionGate(limit=1, timeout=0.05)
        await gate.enter()
        with pytest.raises(Overloaded):
            await gate.enter()
        gate.leave()

        await asyncio.wait_for(gate.enter(), timeout=1)


@dataclass
class HeldApp:
    http: httpx.AsyncClient
    entered: asyncio.Event
    release: asyncio.Event


@pytest.fixture
async def held(database_url: str) -> AsyncIterator[HeldApp]:
    """An app that works on one API request at a time, with a route that holds its place."""
    settings = make_settings(database_url, MAX_CONCURRENT_REQUESTS=1, REQUEST_QUEUE_TIMEOUT=0.2)
    application: FastAPI = create_app(settings)
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"status": "done"}

    application.add_api_route(f"{API}/held", hold, methods=["GET"])
    async with client_of(application) as http:
        yield HeldApp(http, entered, release)
    await application.state.database.dispose()


class TestAdmissionInTheApp:
    async def test_a_request_past_the_limit_is_503_after_the_queue_timeout(
        self, held: HeldApp
    ) -> None:
        holder = asyncio.create_task(held.http.get(f"{API}/held"))
        await held.entered.wait()

        response = await held.http.get(f"{API}/users/me")
        held.release.set()

        body = assert_problem(response, 503)
        assert body["detail"] == "The server is busy; retry later"
        assert response.headers["retry-after"] == "1"
        assert (await holder).status_code == 200

    async def test_a_waiting_request_runs_once_a_place_frees_up(self, held: HeldApp) -> None:
        holder = asyncio.create_task(held.http.get(f"{API}/held"))
        await held.entered.wait()
        waiter = asyncio.create_task(held.http.get(f"{API}/users/me"))
        await asyncio.sleep(0.05)
        held.release.set()

        assert (await holder).status_code == 200
        assert (await waiter).status_code == 401  # admitted: it reached the auth check

    async def test_probes_are_not_held_back(self, held: HeldApp) -> None:
        holder = asyncio.create_task(held.http.get(f"{API}/held"))
        await held.entered.wait()

        health = await held.http.get("/health")
        held.release.set()

        assert health.status_code == 200
        await holder

    async def test_logins_and_registrations_pass_the_gate_the_hash_queue_admits_them(
        self, held: HeldApp
    ) -> None:
        """With every place taken, a registration and a login still run (the hash queue bounds
        them, HASH_QUEUE_LIMIT): they do not wait behind the reads in the gate."""
        holder = asyncio.create_task(held.http.get(f"{API}/held"))
        await held.entered.wait()

        registered = await held.http.post(
            f"{API}/auth/register", json={"username": "waiting", "password": DEFAULT_PASSWORD}
        )
        logged_in = await held.http.post(
            f"{API}/auth/login", data={"username": "waiting", "password": DEFAULT_PASSWORD}
        )
        held.release.set()

        assert registered.status_code == 201, registered.text
        assert logged_in.status_code == 200, logged_in.text
        await holder
