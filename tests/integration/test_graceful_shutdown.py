"""SIGTERM (what ECS and `docker stop` send) on the real server: it stops accepting connections,
lets the request in flight finish, runs the app's shutdown (pools closed) and exits 0.

The request is held in flight by the client, not by the clock: it announces its body with
`Expect: 100-continue`, and uvicorn answers `100 Continue` only once the app is running and
asks for the body. From then on the request is in flight for as long as the body is withheld
(and the body, once sent, costs a bcrypt check of about a second at BCRYPT_ROUNDS=14).
"""

from __future__ import annotations

import http.client
import signal
import socket
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest

from tests.conftest import served_client
from tests.helpers import API
from tests.integration.served import (
    port_of,
    start_server,
    wait_for_exit,
    wait_until_refused,
)

USERNAME, PASSWORD = "graceful-user", "copper-window-sparrow-8"


def read_head(sock: socket.socket) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_sigterm_finishes_the_request_in_flight_then_exits_0(
    database_url: str, tmp_path: Path
) -> None:
    with start_server(database_url, tmp_path, BCRYPT_ROUNDS="14") as server:
        with served_client(server.base_url, timeout=30.0) as served:
            registered = served.post(
                f"{API}/auth/register", json={"username": USERNAME, "password": PASSWORD}
            )
        assert registered.status_code == 201, registered.text
        body = urlencode({"username": USERNAME, "password": PASSWORD}).encode()

        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=30.0) as sock:
            sock.sendall(
                f"POST {API}/auth/login HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n\r\n".encode()
            )
            # The app is now running the login and waiting for its body: in flight.
            assert read_head(sock).startswith(b"HTTP/1.1 100 Continue"), server.output()

            server.process.send_signal(signal.SIGTERM)

            assert wait_until_refused(port_of(server)), "still accepting after SIGTERM"
            assert server.process.poll() is None, "exited with a request in flight"
            sock.sendall(body)
            response = http.client.HTTPResponse(sock)
            response.begin()
            payload = response.read()

        assert response.status == 200, payload
        assert b'"access_token"' in payload
        assert b'"refresh_token"' in payload
        assert response.getheader("connection") == "close"
        returncode = wait_for_exit(server, signal.SIGTERM)

    output = server.output()
    assert returncode == 0, output
    assert "Traceback" not in output
    assert "Cancel" not in output  # nothing was cut off by the graceful-shutdown timeout
    # One JSON line each (ENVIRONMENT=test logs JSON). The login's access line comes before the
    # app's shutdown, which closes the database pool and the rate limiter, then says so.
    messages = [
        (line["logger"], line["message"], line.get("route"), line.get("status"))
        for line in (orjson.loads(text) for text in output.splitlines() if text.startswith("{"))
    ]
    login_done = messages.index(("taskhub.access", "request", f"{API}/auth/login", 200))
    stopped = messages.index(("taskhub.main", "taskhub stopped", None, None))
    assert login_done < stopped
    assert PASSWORD not in output
