"""The HTTP/1.1 protocol `python -m taskhub serve` runs: uvicorn's (httptools), with a deadline on
reading each request and a bound on its headers' size.

uvicorn bounds the wait *between* requests on a kept-alive connection (`timeout_keep_alive`), not
the wait for a request: a connection that sends half its headers, or nothing at all, stays open
for ever (300 of them were all still open 15 s later), and httptools keeps every header byte it
is sent. Here a request must arrive whole within REQUEST_READ_TIMEOUT of its first byte (of the
connection's opening, for a connection's first request):

- headers incomplete at the deadline: a 408 problem, and the connection is closed (nothing of a
  request arrived: closed without a word, like an idle keep-alive connection);
- headers in, body not: the app reads the body itself and answers 408 at the same deadline
  (`http/middleware.py`, which is given it in the scope's extensions); should the app have
  answered already (a 413 or 415 before the body), or not answer within a grace second, the
  connection is closed;
- headers past MAX_HEADER_BYTES: a 431 problem, and the connection is closed.

Why the server and the middleware share the job: docs/adr/0013-slow-clients.md.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from taskhub.config import load_settings
from taskhub.http.middleware import READ_DEADLINE, READ_TIMEOUT, problem_before_app

# uvicorn.run(http=...) takes the protocol class by its import path.
PROTOCOL_PATH = "taskhub.http.protocol:BoundedReadProtocol"
# Far above any real request's headers (a bearer token is ~400 bytes); what is buffered passes it
# by one read of the socket at most.
MAX_HEADER_BYTES = 32 * 1024
HEADERS_TOO_LARGE = f"The request's headers are larger than {MAX_HEADER_BYTES} bytes"
# Past the deadline, how long a request that is being answered gets before its connection is
# closed under it: the app's own 408 goes out at the deadline.
ANSWER_GRACE_SECONDS = 1.0


@cache
def configured_read_timeout() -> float:
    """REQUEST_READ_TIMEOUT, read once per process from the settings the app itself was built
    from (a worker process loads the app first, so they are valid)."""
    return load_settings().REQUEST_READ_TIMEOUT


class BoundedReadProtocol(HttpToolsProtocol):
    """One connection: uvicorn's protocol, with a read clock that runs from a request's first
    byte until its last."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.read_timeout = configured_read_timeout()
        self._read_timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._overdue = False  # the grace after the deadline has begun
        self._begun = False  # a byte of the current request has arrived...
        self._in_headers = False  # ...and its headers have not all arrived yet
        self._header_bytes = 0
        self._ended_here = False  # a request ended in the chunk being parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()  # a first request counts from the connection's opening

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        arriving = self._in_headers
        self._ended_here = False
        super().data_received(data)
        # Counted whole unless an earlier (pipelined) request ended in this chunk: then some of
        # it was that request's, and the count runs from the next chunk.
        if self._in_headers and (arriving or not self._ended_here):
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._refuse(431, HEADERS_TOO_LARGE)

    def handle_websocket_upgrade(self) -> None:
        self._stop_clock()  # the connection is the WebSocket protocol's from here on
        super().handle_websocket_upgrade()

    # httptools' callbacks, as it parses what data_received fed it.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = self._in_headers = True
        self._header_bytes = 0
        if self._read_timer is None:  # a later request on a kept-alive connection: from now
            self._start_clock()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self.scope.setdefault("extensions", {})[READ_DEADLINE] = {"deadline": self._deadline}
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._begun = False
        self._ended_here = True
        self._stop_clock()

    # The read clock.

    def _start_clock(self) -> None:
        self._stop_clock()
        self._overdue = False
        self._deadline = self.loop.time() + self.read_timeout
        self._read_timer = self.loop.call_at(self._deadline, self._read_timed_out)

    def _stop_clock(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if not self._begun:
            self.transport.close()  # not a byte of a request: nobody to answer
        elif self._in_headers and not answering:
            self._refuse(408, READ_TIMEOUT)
        elif answering and not self._overdue:
            # The app owes this body its 408 (same deadline), or an earlier pipelined request on
            # this connection is still being answered: a moment more, then close regardless.
            self._overdue = True
            self._read_timer = self.loop.call_later(ANSWER_GRACE_SECONDS, self._read_timed_out)
        else:
            self.transport.close()  # answered (413, 415) before a body that never came

    def _refuse(self, status: int, detail: str) -> None:
        """A problem document written straight to the socket, then the connection closed."""
        headers, body = problem_before_app(status, detail)
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            head += [name, b": ", value, b"\r\n"]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()
