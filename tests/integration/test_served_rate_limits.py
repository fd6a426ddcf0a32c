"""The per-address login limit on the real server, started by the run command over real HTTP:
uvicorn must not believe X-Forwarded-For itself (proxy headers off), and neither do we when
TRUSTED_PROXIES is empty, so a client on loopback cannot pick its own address.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskhub.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 15.0
API = "/api/v1"
PASSWORD = "copper-window-sparrow-8"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def base_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m taskhub serve` with 3 failed logins per address and minute, no trusted proxy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        JWT_SECRET=secrets.token_urlsafe(48),
        HOST="127.0.0.1",
        PORT=str(port),
        RATE_LIMIT_LOGIN_IP="3/minute",
        TRUSTED_PROXIES="",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskhub", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /health within {STARTUP_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STARTUP_SECONDS)


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_a_spoofed_forwarded_for_from_loopback_does_not_change_the_address(
    base_url: str,
) -> None:
    with httpx.Client(base_url=base_url, timeout=10.0) as http:
        registered = http.post(
            f"{API}/auth/register", json={"username": "served-user", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text

        statuses = []
        for n in range(1, 5):
            response = http.post(
                f"{API}/auth/login",
                data={"username": f"nobody-{n}", "password": "wrong-password-1"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            statuses.append(response.status_code)

        assert statuses == [401, 401, 401, 429]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(response.headers["retry-after"]) <= 60

        # The address, not the username, is limited: even the right password is refused now.
        right = http.post(
            f"{API}/auth/login",
            data={"username": "served-user", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.77"},
        )
        assert right.status_code == 429, right.text
