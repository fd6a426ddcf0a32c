"""The real server, started the way a user starts it (`python -m taskhub serve`), for the
integration tests that talk to it over real HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.hermetic import process_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Generous: a loaded two-core machine (CI beside other jobs) can take this long to start one.
STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 15.0


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


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


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


def wait_until_refused(port: int) -> bool:
    """True once the port refuses connections, False if it still accepts after STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def wait_for_exit(server: Server, sent: signal.Signals) -> int:
    """The server's exit status once the signal `sent` has stopped it; fails the test if it is
    still running after SHUTDOWN_SECONDS."""
    try:
        return server.process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not stop after {sent.name}:\n{server.output()}")


@contextmanager
def start_server(database_url: str, tmp_path: Path, **env_overrides: str) -> Iterator[Server]:
    """`python -m taskhub serve` on a free port of 127.0.0.1 with a fresh JWT secret and the
    given settings, its output in a file of `tmp_path`; up and healthy when this yields, and its
    whole process group killed on exit if it is still running."""
    port = free_port()
    # Only the settings given here: none leak in from the environment pytest runs in.
    env = process_env(
        **{
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            # Killed at the end, it cleans nothing up: whatever it makes in TMPDIR stays in the test's.
            "TMPDIR": str(tmp_path),
            **env_overrides,  # may replace any default above, e.g. a JWT_SECRET shared by two
        }
    )
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskhub", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches any worker processes
        )
    running = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_until_healthy(running)
        yield running
    finally:
        # Only while the leader is not reaped yet: until then its pid (the group id) is not reused.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_SECONDS)
