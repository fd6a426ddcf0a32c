"""Slow clients hold nothing, on the real server over real sockets: hundreds of connections that
send half a request and wait delay nobody else, and each gets a 408 (or, having sent nothing, is
closed) once REQUEST_READ_TIMEOUT has passed."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import served_client
from tests.helpers import API, DEFAULT_PASSWORD
from tests.integration.served import Server, port_of, start_server

READ_TIMEOUT = 3.0
# A request's timeout while the slow clients are held: loose on purpose (the machine is shared),
# yet short of what the answer took before the fix (5 s, and a 503, which fails the test too).
PROMPT_SECONDS = 4.0
# How long after the read timeout every slow connection must have been answered and closed.
CLOSE_WITHIN_SECONDS = 8.0
HALF_HEADERS = b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bea"
HALF_BODY = (
    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
)
# Past the bound on header bytes, still unfinished: refused (431) at once.
HEADERS_TOO_LARGE = HALF_HEADERS + b"x" * 40_000
# Refused from its headers (415) before its body, which never comes.
REFUSED_HALF_BODY = (
    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nx"
)


# The kinds that get nothing before the read timeout.
HELD = ("half headers", "half body", "nothing", "second request, half headers")


@dataclass
class SlowClients:
    """Connections that each sent part of a request (or nothing), by kind."""

    opened_at: float
    by_kind: dict[str, list[socket.socket]] = field(default_factory=dict)

    def all(self) -> list[socket.socket]:
        return [sock for socks in self.by_kind.values() for sock in socks]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with start_server(database_url, tmp_path, REQUEST_READ_TIMEOUT=str(READ_TIMEOUT)) as running:
        yield running


def _open(port: int, first_bytes: bytes, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        opened.append(sock)
        if first_bytes:
            sock.sendall(first_bytes)
    return opened


def _read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length (headers and body may come in two pieces)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head)[1])  # type: ignore[index]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection before `deadline`."""
    received = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk


@contextmanager
def slow_clients(server: Server) -> Iterator[SlowClients]:
    """500 connections: half headers; whole headers and 1 of 100 body bytes; nothing at all; a
    body refused (415) before it arrived; too many header bytes; and a kept-alive connection
    whose second request stops halfway through its headers. All closed on the way out."""
    port = port_of(server)
    clients = SlowClients(opened_at=time.monotonic())
    try:
        clients.by_kind["half headers"] = _open(port, HALF_HEADERS, 200)
        clients.by_kind["half body"] = _open(port, HALF_BODY, 200)
        clients.by_kind["nothing"] = _open(port, b"", 90)
        clients.by_kind["refused body"] = _open(port, REFUSED_HALF_BODY, 8)
        clients.by_kind["headers too large"] = _open(port, HEADERS_TOO_LARGE, 1)
        kept_alive = _open(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 1)
        clients.by_kind["second request, half headers"] = kept_alive
        first = _read_response(kept_alive[0])
        assert first.startswith(b"HTTP/1.1 200 "), first
        kept_alive[0].sendall(HALF_HEADERS)
        yield clients
    finally:
        for sock in clients.all():
            sock.close()


def _still_waiting(sock: socket.socket) -> bool:
    """Open, and nothing received yet."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_half_sent_requests_delay_nobody_and_get_408_after_the_read_timeout(
    server: Server,
) -> None:
    with served_client(server.base_url, timeout=10.0) as http:
        registered = http.post(
            f"{API}/auth/register", json={"username": "patient", "password": DEFAULT_PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = http.post(
            f"{API}/auth/login", data={"username": "patient", "password": DEFAULT_PASSWORD}
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert http.get(f"{API}/users/me", headers=auth).status_code == 200  # connection warm

        with slow_clients(server) as clients:
            for _ in range(3):
                me = http.get(f"{API}/users/me", headers=auth, timeout=PROMPT_SECONDS)
                assert me.status_code == 200, me.text
            assert http.get("/health", timeout=PROMPT_SECONDS).status_code == 200

            # Measured while every slow client was still held open, unanswered.
            held = [sock for kind in HELD for sock in clients.by_kind[kind]]
            waiting = [sock for sock in held if _still_waiting(sock)]
            assert len(waiting) == len(held), (
                f"only {len(waiting)} of {len(held)} slow clients still waiting after "
                f"{time.monotonic() - clients.opened_at:.1f} s (read timeout {READ_TIMEOUT} s)"
            )
            _assert_answered_and_closed(clients)


def _assert_answered_and_closed(clients: SlowClients) -> None:
    deadline = clients.opened_at + READ_TIMEOUT + CLOSE_WITHIN_SECONDS
    expected_status = {
        "half headers": 408,
        "half body": 408,
        "second request, half headers": 408,
        "refused body": 415,  # at once; then closed when its body is overdue
        "headers too large": 431,  # at once
        "nothing": None,  # no request to answer: closed without a word
    }
    for kind, socks in clients.by_kind.items():
        for sock in socks:
            received, closed = _read_until_closed(sock, deadline)
            assert closed, f"{kind}: still open {CLOSE_WITHIN_SECONDS} s after the read timeout"
            head, _, body = received.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1]) if head else None
            assert status == expected_status[kind], (kind, received[:300])
            if status == 408:
                assert b"\r\nconnection: close\r\n" in head.lower()
                assert b"application/problem+json" in head
                assert b'"status":408' in body
