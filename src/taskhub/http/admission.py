"""Admission: how many API requests one worker process works on at once.

Past the limit, requests wait in arrival order before any work is done for them, and one that
waits longer than its timeout is shed with a 503: without it every accepted connection's request
starts at once, each queueing twice for a database connection (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections import deque


class Overloaded(Exception):
    """A request waited its whole timeout for its turn."""


class AdmissionGate:
    """At most `limit` holders at a time; waiters are let in first come, first served.

    One timer serves every waiter: they share the timeout, so the oldest expires first.
    """

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._free = limit
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()  # (deadline, turn)
        self._expiry: asyncio.TimerHandle | None = None

    async def enter(self) -> None:
        """Take a place, waiting for one at most `timeout` seconds; Overloaded after that."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        self._waiting.append((loop.time() + self.timeout, turn))
        if self._expiry is None:
            self._expiry = loop.call_at(self._waiting[0][0], self._expire_overdue)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.leave()  # handed a place in the same instant it was cancelled: pass it on
            raise

    def leave(self) -> None:
        """Give the place back: to the longest waiter still waiting, or to the free places."""
        while self._waiting:
            _deadline, turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def _expire_overdue(self) -> None:
        loop = asyncio.get_running_loop()
        self._expiry = None
        while self._waiting and self._waiting[0][0] <= loop.time():
            _deadline, turn = self._waiting.popleft()
            if not turn.done():
                turn.set_exception(Overloaded())
        if self._waiting:
            self._expiry = loop.call_at(self._waiting[0][0], self._expire_overdue)
