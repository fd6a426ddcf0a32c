"""Private Redis and PostgreSQL servers for the tests that stall, stop or restart them: each on a
free loopback port, in a temporary folder, never the machine's shared servers. Every wait is
bounded; whatever a test leaves running is stopped by the fixtures that start them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import redis

from tests.integration.served import free_port

START_SECONDS = 30.0
STOP_SECONDS = 30.0
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_USER = "postgres"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


class PrivateRedis:
    """`redis-server` on 127.0.0.1:<free port>, no persistence, in its own folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5.0)

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command, our own arguments
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            with suppress(redis.RedisError), self.client() as connection:
                if connection.ping():
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """Gone at once, as a crashed server or a dropped network: connections are refused."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)
        self.process = None

    def freeze(self) -> None:
        """Stalled: the kernel still accepts connections, nothing is ever answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def pause(self, seconds: float) -> None:
        """`CLIENT PAUSE`: every client's commands wait until it ends (it cannot be ended early)."""
        with self.client() as connection:
            connection.execute_command("CLIENT", "PAUSE", int(seconds * 1000))

    def connections_received(self) -> int:
        """How many connections the server has accepted since it started (this one included)."""
        with self.client() as connection:
            stats = connection.info("stats")
        return int(stats["total_connections_received"])


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    with tempfile.TemporaryDirectory(prefix="wtf-redis-") as folder:
        server = PrivateRedis(Path(folder))
        server.start()
        try:
            yield server
        finally:
            if server.process is not None:
                server.thaw()  # a stopped process would ignore the kill until continued
            server.kill()


class PrivatePostgres:
    """A PostgreSQL 15 cluster of its own (initdb), run as the `postgres` user on
    127.0.0.1:<free port>, fsync off: it is thrown away after the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = START_SECONDS) -> None:
        subprocess.run(  # noqa: S603 - a fixed command, our own arguments
            [RUNUSER, "-u", POSTGRES_USER, "--", *command],
            check=True,
            timeout=timeout,
            capture_output=True,
            cwd=self.folder,
        )

    def init(self) -> None:
        self._run(
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            POSTGRES_USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            # fsync off: nothing here must survive the machine crashing. synchronous_commit
            # stays on, so a commit PostgreSQL acknowledged survives even `-m immediate`.
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
            f"-c full_page_writes=off -c unix_socket_directories={self.folder}"
        )
        self._run(
            str(POSTGRES_BIN / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(int(START_SECONDS)),
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            options,
            *extra,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="wtf-pg-"))
    try:
        shutil.chown(folder, user=POSTGRES_USER, group=POSTGRES_USER)
        server = PrivatePostgres(folder)
        server.init()
        server.start()
        try:
            yield server
        finally:
            with suppress(subprocess.SubprocessError):
                server._pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
