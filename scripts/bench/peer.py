"""TaskHub beside the FastAPI full-stack template, in one run (issue 20).

The template (`../shared/peer/`, its README gives the method) is prepared once by its
`setup.sh` (from a git mirror named by `BENCH_PEER_MIRROR`; a prepared one is reused) and started
by its `start.sh` on a fresh database with 10,000 items for its bench user. Each pair of
scenarios (list a page of 50, the current user, create) runs three rounds with the order
flipped each round, after a warm-up, and each side's median is kept: absolute req/s drift between
runs on a shared machine, the ratio measured minutes apart does not.
"""

# ruff: noqa: S603, S607 - the commands are the peer's own scripts and psql, with our values

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PEER_DIR = Path(__file__).resolve().parents[3] / "shared" / "peer"
PEER_HOME = Path(
    os.environ.get("PEER_HOME")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "taskhub-bars" / "peer"
)
DATABASE = "taskhub_bench_peer"
ROUNDS = 3


@dataclass(frozen=True)
class Pair:
    key: str
    label: str
    taskhub_path: str
    taskhub_script: str
    peer_path: str
    peer_script: str


PAIRS = (
    Pair("list", "GET a page of 50", "/api/v1/tasks?limit=50", "get.lua", "/api/v1/items/?limit=50", "get.lua"),
    Pair("me", "GET the current user", "/api/v1/users/me", "get.lua", "/api/v1/users/me", "get.lua"),
    Pair("create", "POST a new one", "/api/v1/tasks", "create.lua", "/api/v1/items/", "peer_create.lua"),
)  # fmt: skip


@dataclass(frozen=True)
class Side:
    rps: list[float]
    p99_ms: list[float]

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)

    @property
    def median_p99_ms(self) -> float:
        return statistics.median(self.p99_ms)


@dataclass(frozen=True)
class Compared:
    key: str
    label: str
    taskhub: Side
    peer: Side

    @property
    def ratio(self) -> float:
        return self.taskhub.median_rps / self.peer.median_rps if self.peer.median_rps else 0.0


def prepared() -> bool:
    """Whether the template can run here: prepared already, or a mirror to prepare it from."""
    if (PEER_HOME / ".ok").exists():
        return True
    mirror = os.environ.get("BENCH_PEER_MIRROR")
    if not mirror or not (PEER_DIR / "setup.sh").exists():
        return False
    env = {**os.environ, "PEER_MIRROR": mirror}
    return (
        subprocess.run(["bash", str(PEER_DIR / "setup.sh")], env=env, check=False).returncode == 0
    )


@dataclass(frozen=True)
class Peer:
    port: int
    token: str


@contextmanager
def running_peer(port: int) -> Iterator[Peer]:
    env = {**os.environ, "PG_ADMIN_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
    # Into files, not pipes: the server it leaves running holds its stdout open.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(
            ["bash", str(PEER_DIR / "start.sh"), str(port), DATABASE],
            env=env,
            stdout=out,
            stderr=err,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if done.returncode != 0:
        raise RuntimeError(f"the template did not start: {stderr[-800:]}")
    lines = stdout.strip().splitlines()
    pid = int(next(line for line in lines if line.startswith("peer_pid=")).split("=", 1)[1])
    try:
        yield Peer(port=port, token=lines[-1].strip())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
             f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", "postgres"],
            capture_output=True,
            check=False,
        )  # fmt: skip


# (script, url, token) -> (req/s, p99 ms) of one warm-up-then-measured wrk run.
Measure = Callable[[str, str, str], tuple[float, float]]


def compare(taskhub_base: str, taskhub_token: str, peer: Peer, measure: Measure) -> list[Compared]:
    peer_base = f"http://127.0.0.1:{peer.port}"
    compared = []
    for pair in PAIRS:
        sides: dict[str, tuple[list[float], list[float]]] = {"taskhub": ([], []), "peer": ([], [])}
        runs = {
            "taskhub": (pair.taskhub_script, taskhub_base + pair.taskhub_path, taskhub_token),
            "peer": (pair.peer_script, peer_base + pair.peer_path, peer.token),
        }
        for index in range(ROUNDS):
            order = ("taskhub", "peer") if index % 2 == 0 else ("peer", "taskhub")
            for side in order:
                rps, p99 = measure(*runs[side])
                sides[side][0].append(rps)
                sides[side][1].append(p99)
        compared.append(
            Compared(pair.key, pair.label, Side(*sides["taskhub"]), Side(*sides["peer"]))
        )
    return compared
