"""The real server, started the way a user starts it (`python -m taskhub serve`), over real HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from taskhub.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 15.0
SHUTDOWN_SECONDS = 15.0
API = "/api/v1"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /health within {STARTUP_SECONDS} s:\n{server.output()}")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        JWT_SECRET=secrets.token_urlsafe(48),
        HOST="127.0.0.1",
        PORT=str(port),
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
    running = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_until_healthy(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=SHUTDOWN_SECONDS)


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_a_user_session_over_real_http_then_a_clean_shutdown(server: Server) -> None:
    username, password = "integration-user", "copper-window-sparrow-8"
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        registered = http.post(
            f"{API}/auth/register", json={"username": username, "password": password}
        )
        assert registered.status_code == 201, registered.text
        assert "server" not in registered.headers
        assert registered.headers["x-content-type-options"] == "nosniff"

        logged_in = http.post(
            f"{API}/auth/login", data={"username": username, "password": password}
        )
        assert logged_in.status_code == 200, logged_in.text
        tokens = logged_in.json()
        assert tokens["token_type"] == "bearer"
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}

        created = http.post(
            f"{API}/tasks", json={"title": "  ship it  ", "priority": "high"}, headers=auth
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["title"] == "ship it"
        assert created.headers["location"] == f"{API}/tasks/{task['id']}"

        listed = http.get(f"{API}/tasks", headers=auth)
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [task["id"]]

        refreshed = http.post(
            f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        new_auth = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}

        logged_out = http.post(f"{API}/auth/logout", headers=new_auth)
        assert logged_out.status_code == 204

        rejected = http.get(f"{API}/tasks", headers=auth)
        assert rejected.status_code == 401
        assert rejected.headers["content-type"].startswith("application/problem+json")
        assert rejected.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert "server" not in rejected.headers
        assert rejected.headers["x-request-id"]

    server.process.send_signal(signal.SIGINT)
    try:
        returncode = server.process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not stop on SIGINT:\n{server.output()}")
    output = server.output()
    assert returncode == 0, output
    assert "Traceback" not in output
    assert password not in output
    assert tokens["access_token"] not in output
