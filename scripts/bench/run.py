"""`make bench`: load-test TaskHub the way production runs it, and write docs/benchmarks.md.

Creates and seeds its own PostgreSQL database (taskhub_bench on 127.0.0.1:5432, dropped first),
counts database round trips and captures query plans in-process, then for 1 and 2 workers
starts `python -m taskhub serve` as deployed (ENVIRONMENT=production, rate limits on and shared in
Redis, each limit far too high to trip) and, beside it, the same server with rate limits off,
and drives them with wrk (1 thread, a warm-up run, then a measured run per scenario, on the
deployed server and then on the other), sampling the server's CPU and memory. Each row gives
the deployed server's figures and, beside them, the limits-off req/s of the same run.

Environment overrides, for a quick smoke run:
    BENCH_DURATION=15   seconds measured per scenario
    BENCH_WARMUP=3      seconds of warm-up before each
    BENCH_WORKERS=1,2   the WEB_CONCURRENCY values, one round each
    BENCH_PROFILE=1     0 skips the py-spy profiles (1 worker: list first page, current user)
    BENCH_SEED=1        0 reuses the database a previous run seeded (no drop, no seed)
    BENCH_QUIET_WAIT=120  seconds to wait at most for other jobs on the machine to go quiet
    BENCH_DOC=docs/benchmarks.md
    BENCH_ONLY=         comma-separated scenario keys (e.g. proj_base_p1,proj_p1; `mixed` for the
                        abuse scenarios run together; `peer` for the template): only those run,
                        without the calibration and the profiles (the mixed ones only with `mixed`)
    BENCH_PEER_MIRROR=  a git mirror of fastapi/full-stack-fastapi-template: the template is
                        prepared from it (../shared/peer/setup.sh) and measured beside TaskHub in
                        the 1-worker round (peer.py); a template prepared earlier is used as is
Only loopback addresses are used; every child process is stopped on exit, error or Ctrl-C.
"""

# ruff: noqa: S603 - every command line is built here from constants and our own values

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import dbsetup
import peer
import procstat
import report
from probe import (
    FILTERED_QUERY,
    LABEL_PATH,
    PAGE_LIMIT,
    PAGE_WALK,
    PROJECTS_PATH,
    SCALE_LIMIT,
    run_probe,
)

ROOT = Path(__file__).resolve().parents[2]
LUA_DIR = Path(__file__).resolve().parent / "lua"
OUT_DIR = ROOT / "var" / "bench"
HOST = "127.0.0.1"
WRK_TIMEOUT = "10s"  # longer than DB_POOL_TIMEOUT (5 s): a shed request shows as a status error
READY_SECONDS = 60
STOP_SECONDS = 30
PAUSE_SECONDS = 1.0
AFTER_LOGINS_SECONDS = 3.0  # logins still queued for bcrypt when wrk stops finish meanwhile
PROFILE_RATE = 100


@dataclass(frozen=True)
class Config:
    duration: int
    warmup: int
    workers: tuple[int, ...]
    profile: bool
    seed: bool
    quiet_wait: int
    doc: Path
    only: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> Config:
        workers = tuple(int(w) for w in os.environ.get("BENCH_WORKERS", "1,2").split(",") if w)
        return cls(
            duration=max(1, int(os.environ.get("BENCH_DURATION", "15"))),
            warmup=max(0, int(os.environ.get("BENCH_WARMUP", "3"))),
            workers=workers or (1,),
            profile=os.environ.get("BENCH_PROFILE", "1") != "0",
            seed=os.environ.get("BENCH_SEED", "1") != "0",
            quiet_wait=max(0, int(os.environ.get("BENCH_QUIET_WAIT", "120"))),
            doc=ROOT / os.environ.get("BENCH_DOC", "docs/benchmarks.md"),
            only=frozenset(k for k in os.environ.get("BENCH_ONLY", "").split(",") if k),
        )


# Every child process, so that any exit path can stop them.
_children: list[subprocess.Popen[Any]] = []


def _spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    proc = subprocess.Popen(cmd, **kwargs)
    _children.append(proc)
    return proc


def _stop(proc: subprocess.Popen[Any], *, group: bool = False) -> None:
    if proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(timeout=STOP_SECONDS)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=10)


def _stop_all() -> None:
    for proc in reversed(_children):
        _stop(proc, group=getattr(proc, "bench_group", False))


def _on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- HTTP helpers (stdlib, loopback only) -------------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        conn.close()


def login(port: int, username: str) -> str:
    form = urlencode(
        {"grant_type": "password", "username": username, "password": dbsetup.BENCH_PASSWORD}
    ).encode()
    status, body = http_request(
        port,
        "POST",
        "/api/v1/auth/login",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"login of {username} failed: {status} {body}")
    return str(body["access_token"])


# The scenarios' key for "the bench user, through a personal access token" (issue 21).
TOKEN_USER = "token:" + dbsetup.BENCH_USER


def access_token(port: int, session_token: str) -> str:
    """A personal access token of the session's user that may read tasks."""
    body_json = json.dumps({"name": "bench", "scopes": ["tasks:read"]}).encode()
    status, body = http_request(
        port,
        "POST",
        "/api/v1/tokens",
        body=body_json,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {session_token}"},
    )
    if status != 201:
        raise RuntimeError(f"making an access token failed: {status} {body}")
    return str(body["token"])


def page_100_cursor(port: int, token: str, path: str = f"/api/v1/tasks?limit={SCALE_LIMIT}") -> str:
    """Walk 99 pages of `path` by next_cursor, as a client would, to reach page 100."""
    cursor: str | None = None
    for page in range(1, PAGE_WALK + 1):
        joiner = "&" if "?" in path else "?"
        query = path + (joiner + urlencode({"cursor": cursor}) if cursor else "")
        status, body = http_request(
            port, "GET", query, headers={"Authorization": f"Bearer {token}"}
        )
        if status != 200 or not body.get("next_cursor"):
            raise RuntimeError(f"page {page}: {status}, no next cursor")
        cursor = body["next_cursor"]
    if cursor is None:
        raise RuntimeError("no cursor")
    return cursor


# --- The server ---------------------------------------------------------------------------


# Every limit of the deployed server: on, shared in Redis, and far too high for wrk to trip.
NEVER_TRIPPED = "100000000/minute"
LIMITS = (
    "RATE_LIMIT_API",
    "RATE_LIMIT_LOGIN",
    "RATE_LIMIT_LOGIN_IP",
    "RATE_LIMIT_LOGIN_USERNAME",
    "RATE_LIMIT_LOGIN_ATTEMPTS_IP",
    "RATE_LIMIT_REGISTER",
)


def server_env(workers: int, port: int, secret: str, *, limits: bool = True) -> dict[str, str]:
    """As deployed (`limits`), or with rate limits off, which production refuses: ENVIRONMENT=test
    runs the same code, differing only in the start-up checks and the bcrypt default (set below)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    if limits:
        env.update(dict.fromkeys(LIMITS, NEVER_TRIPPED))
        env["RATE_LIMIT_KEY_PREFIX"] = f"taskhub-bench-{secrets.token_hex(4)}"
    env.update(
        {
            "ENVIRONMENT": "production" if limits else "test",
            "DATABASE_URL": dbsetup.bench_url(),
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "JWT_SECRET": secret,
            "RATE_LIMIT_ENABLED": "true" if limits else "false",
            # The login scenarios log the bench user in thousands of times: the session cap would
            # end the session whose token every other scenario reads with (401s, not speed).
            "MAX_SESSIONS_PER_USER": "10000",
            "BCRYPT_ROUNDS": "12",
            "LOG_LEVEL": "WARNING",
            "HOST": HOST,
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
        }
    )
    return env


@dataclass
class Server:
    workers: int
    port: int
    proc: subprocess.Popen[Any]
    log: Path

    def worker_pids(self) -> list[int]:
        processes = procstat.all_processes()
        tree = procstat.tree_of(self.proc.pid, processes)
        if self.workers == 1:
            return [self.proc.pid]
        # uvicorn's supervisor spawns one python process per worker (and a resource tracker).
        return [pid for pid in tree if pid != self.proc.pid and _is_worker(pid)]


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline


@contextmanager
def running_server(workers: int, secret: str, *, limits: bool = True) -> Iterator[Server]:
    port = free_port()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log = OUT_DIR / f"server-{workers}w{'' if limits else '-limits-off'}.log"
    with log.open("w") as log_file:
        proc = _spawn(
            [sys.executable, "-m", "taskhub", "serve"],
            env=server_env(workers, port, secret, limits=limits),
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers are stopped with it
        )
        proc.bench_group = True  # type: ignore[attr-defined]
        server = Server(workers=workers, port=port, proc=proc, log=log)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(proc, group=True)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited: see {server.log}")
        try:
            status, _ = http_request(server.port, "GET", "/health")
            if status == 200 and (
                server.workers == 1 or len(server.worker_pids()) >= server.workers
            ):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within {READY_SECONDS} s")


@contextmanager
def running_bare_starlette() -> Iterator[Server]:
    """bare_app.py under uvicorn with TaskHub's server flags (see __main__.serve)."""
    port = free_port()
    log = OUT_DIR / "server-bare.log"
    cmd = [
        sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(Path(__file__).parent),
        "--host", HOST, "--port", str(port), "--workers", "1", "--no-access-log",
        "--no-server-header", "--no-proxy-headers", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as log_file:
        proc = _spawn(
            cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        proc.bench_group = True  # type: ignore[attr-defined]
        server = Server(workers=1, port=port, proc=proc, log=log)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(proc, group=True)


def run_bare(cfg: Config) -> report.Result:
    with running_bare_starlette() as server:
        ctx = Context(cfg, server, {}, {}, "", OUT_DIR / "patch-ids.txt")
        sc = Scenario(
            "bare",
            "bare Starlette JSON (calibration)",
            "get.lua",
            "/health",
            32,
            authenticated=False,
        )
        return run_scenario(ctx, sc)


# --- wrk ----------------------------------------------------------------------------------


@dataclass
class WrkStats:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    error_detail: str


def start_wrk(
    script: str, url: str, connections: int, seconds: int, env: dict[str, str]
) -> subprocess.Popen[str]:
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT,
        "--latency", "-s", str(LUA_DIR / script), url,
    ]  # fmt: skip
    full_env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **env}
    return _spawn(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_wrk(proc: subprocess.Popen[str], seconds: int, raw_name: str | None) -> WrkStats:
    out, err = proc.communicate(timeout=seconds + 60)
    if raw_name:
        (OUT_DIR / "raw").mkdir(parents=True, exist_ok=True)
        (OUT_DIR / "raw" / f"{raw_name}.txt").write_text(out + err)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out[-500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = data["duration_us"] / 1e6
    kinds = ("status", "timeout", "connect", "read", "write")
    errors = sum(data[k] for k in kinds)
    detail = ", ".join(f"{k} {data[k]}" for k in kinds if data[k])
    return WrkStats(
        requests=data["requests"],
        seconds=seconds_run,
        rps=data["requests"] / seconds_run if seconds_run else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        error_detail=detail,
    )


# --- Scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    script: str
    path: str
    connections: int
    user: str = dbsetup.BENCH_USER
    every_round: bool = False  # False: only in the first (1-worker) round
    authenticated: bool = True
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    cfg: Config
    server: Server
    tokens: dict[str, str]
    cursors: dict[str, str]
    task_id: str
    ids_file: Path
    project_task_id: str = ""
    # The same app with rate limits off, on the same database (the same tokens work on it).
    limits_off: Server | None = None


LIST_PATH = f"/api/v1/tasks?limit={PAGE_LIMIT}"
LOGIN_ENV = {"BENCH_USERNAME": dbsetup.BENCH_USER, "BENCH_PASSWORD": dbsetup.BENCH_PASSWORD}


def scenarios(ctx: Context) -> list[Scenario]:
    scale = f"/api/v1/tasks?limit={SCALE_LIMIT}"
    large, small = dbsetup.LARGE_USER, dbsetup.SMALL_USER

    def page100(user: str) -> str:
        return scale + "&" + urlencode({"cursor": ctx.cursors[user]})

    def walked(path: str, name: str) -> str:
        return path + ("&" if "?" in path else "?") + urlencode({"cursor": ctx.cursors[name]})

    # Issue 13: listing across 50 projects against a personal-only user with as many tasks
    # (the same URL, so the same page size and response), and the label filter's page cost.
    members, personal = dbsetup.PROJECT_USER, dbsetup.BENCH_USER
    projects100 = PROJECTS_PATH + "?limit=100"

    return [
        Scenario("health", "/health (local ceiling)", "get.lua", "/health", 32, every_round=True, authenticated=False),
        Scenario("list32", "list first page", "get.lua", LIST_PATH, 32, every_round=True),
        Scenario("list64", "list first page", "get.lua", LIST_PATH, 64),
        Scenario("list256", "list first page", "get.lua", LIST_PATH, 256, every_round=True),
        Scenario("filter", "list filter + sort -due_at", "get.lua", f"/api/v1/tasks?{urlencode(FILTERED_QUERY)}", 32),
        Scenario("get", "get one task", "get.lua", f"/api/v1/tasks/{ctx.task_id}", 32),
        Scenario("get_project", "get one project task (50-project user)", "get.lua", f"/api/v1/tasks/{ctx.project_task_id}", 32, user=members),
        Scenario("me", "get current user", "get.lua", "/api/v1/users/me", 32, every_round=True),
        Scenario("list32_token", "list first page, access token", "get.lua", LIST_PATH, 32, user=TOKEN_USER),
        Scenario("me_token", "get current user, access token", "get.lua", "/api/v1/users/me", 32, user=TOKEN_USER),
        Scenario("scale_large_p1", "scale: 100k-task user, page 1", "get.lua", scale, 4, user=large),
        Scenario("scale_small_p1", "scale: 1k-task user, page 1", "get.lua", scale, 4, user=small),
        Scenario("scale_large_p100", "scale: 100k-task user, page 100", "get.lua", page100(large), 4, user=large),
        Scenario("scale_small_p100", "scale: 1k-task user, page 100", "get.lua", page100(small), 4, user=small),
        Scenario("proj_base_p1", "projects: personal-only user (10k tasks), page 1", "get.lua", PROJECTS_PATH, 4, user=personal),
        Scenario("proj_p1", "projects: 50-project user (10k tasks), page 1", "get.lua", PROJECTS_PATH, 4, user=members),
        Scenario("proj_base_p1_l100", "projects: personal-only user, page 1 of 100", "get.lua", projects100, 4, user=personal),
        Scenario("proj_p1_l100", "projects: 50-project user, page 1 of 100", "get.lua", projects100, 4, user=members),
        Scenario("proj_base_p100", "projects: personal-only user, page 100", "get.lua", walked(PROJECTS_PATH, "proj_base"), 4, user=personal),
        Scenario("proj_p100", "projects: 50-project user, page 100", "get.lua", walked(PROJECTS_PATH, "proj"), 4, user=members),
        Scenario("label_p1", f"label={dbsetup.LABEL}: 100k-task user, page 1", "get.lua", LABEL_PATH, 4, user=large),
        Scenario("label_p100", f"label={dbsetup.LABEL}: 100k-task user, page 100", "get.lua", walked(LABEL_PATH, "label"), 4, user=large),
        Scenario("login", "login (bcrypt 12)", "login.lua", "/api/v1/auth/login", 4, every_round=True, authenticated=False, env=LOGIN_ENV),
        # The mixed scenarios (MIXED: a login burst, a login flood, logins during saturating reads,
        # half-sent requests held open) run here, before create.
        Scenario("create", "create", "create.lua", "/api/v1/tasks", 32, every_round=True),
        Scenario("patch", "patch", "patch.lua", "/api/v1/tasks", 32, env={"BENCH_IDS_FILE": str(ctx.ids_file)}),
    ]  # fmt: skip


def run_scenario(ctx: Context, sc: Scenario) -> report.Result:
    """The scenario on the deployed server, then on the limits-off one (the figure beside it)."""
    result = _measured(ctx, ctx.server, sc)
    if ctx.limits_off is None:
        return result
    off = _measured(ctx, ctx.limits_off, sc)
    return replace(result, off_rps=off.rps, off_p99_ms=off.p99_ms)


def _measured(ctx: Context, server: Server, sc: Scenario) -> report.Result:
    url = f"http://{HOST}:{server.port}{sc.path}"
    env = dict(sc.env)
    if sc.authenticated:
        env["BENCH_TOKEN"] = ctx.tokens[sc.user]
    if ctx.cfg.warmup:
        finish_wrk(
            start_wrk(sc.script, url, sc.connections, ctx.cfg.warmup, env), ctx.cfg.warmup, None
        )
        _settle_after_warmup([sc.script])
    sampler = procstat.Sampler(server.proc.pid)
    sampler.start()
    suffix = "" if server is ctx.server else "-limits-off"
    try:
        stats = finish_wrk(
            start_wrk(sc.script, url, sc.connections, ctx.cfg.duration, env),
            ctx.cfg.duration,
            f"{server.workers}w-{sc.key}{suffix}",
        )
    finally:
        usage = sampler.stop()
    return _result(sc.key, sc.label, sc.connections, server.workers, stats, usage)


@dataclass(frozen=True)
class Load:
    """One wrk run of a mixed scenario, reported on its own row."""

    key: str
    label: str
    script: str
    path: str
    connections: int
    env: dict[str, str]


LOGIN_PATH = "/api/v1/auth/login"


def run_together(ctx: Context, loads: list[Load]) -> list[report.Result]:
    """The loads at once, each on its own wrk (the server's CPU figures are the whole run's)."""
    base = f"http://{HOST}:{ctx.server.port}"

    def start(seconds: int) -> list[subprocess.Popen[str]]:
        return [start_wrk(x.script, base + x.path, x.connections, seconds, x.env) for x in loads]

    if ctx.cfg.warmup:
        for proc in start(ctx.cfg.warmup):
            finish_wrk(proc, ctx.cfg.warmup, None)
        _settle_after_warmup([load.script for load in loads])
    sampler = procstat.Sampler(ctx.server.proc.pid)
    sampler.start()
    try:
        procs = start(ctx.cfg.duration)
        workers = ctx.server.workers
        stats = [
            finish_wrk(proc, ctx.cfg.duration, f"{workers}w-{load.key}")
            for proc, load in zip(procs, loads, strict=True)
        ]
    finally:
        usage = sampler.stop()
    return [
        _result(load.key, load.label, load.connections, workers, stat, usage)
        for load, stat in zip(loads, stats, strict=True)
    ]


def _settle_after_warmup(scripts: list[str]) -> None:
    """The server does not stop a request whose client left: the warm-up's last logins still
    hold their places in the hash queue (and the measured run would start with 503s) until
    they are hashed."""
    if "login.lua" in scripts:
        time.sleep(AFTER_LOGINS_SECONDS)


def run_burst(ctx: Context) -> list[report.Result]:
    """The list (32 connections) and logins (4) at once: do reads keep their throughput?"""
    return run_together(
        ctx,
        [
            Load("burst_list", "list during a login burst", "get.lua", LIST_PATH, 32, _reader(ctx)),
            Load("burst_login", "logins during that burst", "login.lua", LOGIN_PATH, 4, LOGIN_ENV),
        ],
    )


def run_login_flood(ctx: Context) -> list[report.Result]:
    """The list (32 connections) while 32 connections log in successfully as fast as they can:
    past HASH_QUEUE_LIMIT the logins are refused at once (503, counted as errors); reads must keep
    ≥ 70 % of their throughput."""
    return run_together(
        ctx,
        [
            Load("flood_list", "list during a flood of successful logins", "get.lua", LIST_PATH, 32, _reader(ctx)),
            Load("flood_login", "the login flood (503 past the hash queue)", "login.lua", LOGIN_PATH, 32, LOGIN_ENV),
        ],
    )  # fmt: skip


def run_saturated_logins(ctx: Context) -> list[report.Result]:
    """Logins (4 connections) while the list at 256 connections saturates every worker: logins
    must keep ≥ 50 % of their rate alone, with no timeout, and reads ≥ 70 % of theirs."""
    return run_together(
        ctx,
        [
            Load("saturated_list", "list, 256 conns, during logins", "get.lua", LIST_PATH, 256, _reader(ctx)),
            Load("saturated_login", "logins during saturating reads", "login.lua", LOGIN_PATH, 4, LOGIN_ENV),
        ],
    )  # fmt: skip


def run_held_open(ctx: Context) -> list[report.Result]:
    """The current user (32 connections) while HELD_OPEN connections each hold half a request
    (re-opened as the server answers them 408 after REQUEST_READ_TIMEOUT): no slower than alone
    by more than 100 ms."""
    me = Load(
        "held_me",
        f"get current user while {HELD_OPEN} half-sent requests are held",
        "get.lua",
        "/api/v1/users/me",
        32,
        _reader(ctx),
    )
    with holding_half_requests(ctx.server.port, HELD_OPEN):
        return run_together(ctx, [me])


def _reader(ctx: Context) -> dict[str, str]:
    return {"BENCH_TOKEN": ctx.tokens[dbsetup.BENCH_USER]}


# --- Half-sent requests -------------------------------------------------------------------

HELD_OPEN = 500
# Half of them stop inside their headers, half after whole headers and 1 of 100 body bytes.
HALF_HEADERS = b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bea"
HALF_BODY = (
    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
)


@contextmanager
def holding_half_requests(port: int, count: int) -> Iterator[None]:
    """`count` loopback connections that each sent half a request, kept at `count` by a thread
    that opens a new one for each the server answers or closes; all closed on exit."""
    stop = threading.Event()
    held: dict[socket.socket, bytes] = {}
    chooser = selectors.DefaultSelector()

    def open_one(first: bytes) -> None:
        sock = socket.create_connection((HOST, port), timeout=5)
        sock.sendall(first)
        sock.setblocking(False)
        held[sock] = first
        chooser.register(sock, selectors.EVENT_READ)

    def keep_holding() -> None:
        while not stop.is_set():
            for key, _ in chooser.select(timeout=0.2):
                sock = cast(socket.socket, key.fileobj)
                chooser.unregister(sock)
                first = held.pop(sock)
                sock.close()  # answered (408) or closed: its place is taken by a new one
                if not stop.is_set():
                    open_one(first)

    for n in range(count):
        open_one(HALF_HEADERS if n % 2 else HALF_BODY)
    holder = threading.Thread(target=keep_holding, name="half-requests", daemon=True)
    holder.start()
    try:
        yield
    finally:
        stop.set()
        holder.join(timeout=10)
        for sock in list(held):
            chooser.unregister(sock)
            sock.close()
        chooser.close()


# Run in every round, in this order, before create: (what the log says, the scenario).
MIXED: tuple[tuple[str, Callable[[Context], list[report.Result]]], ...] = (
    ("list during a login burst", run_burst),
    ("list during a flood of successful logins", run_login_flood),
    ("logins during saturating reads", run_saturated_logins),
    (f"current user while {HELD_OPEN} half-sent requests are held", run_held_open),
)


def _result(
    key: str, label: str, conns: int, workers: int, stats: WrkStats, usage: procstat.Usage
) -> report.Result:
    return report.Result(
        key=key,
        label=label,
        connections=conns,
        workers=workers,
        rps=stats.rps,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
        errors=stats.errors,
        error_detail=stats.error_detail,
        requests=stats.requests,
        server_cpu=usage.server_cpu_percent,
        pg_cpu=usage.postgres_cpu_percent,
        wrk_cpu=usage.wrk_cpu_percent,
        other_cpu=usage.other_cpu_percent,
        rss_worker_mb=usage.peak_rss_process_bytes / 2**20,
        rss_tree_mb=usage.peak_rss_tree_bytes / 2**20,
    )


# --- py-spy -------------------------------------------------------------------------------


PROFILED = (
    ("list32", "list first page", LIST_PATH),
    ("me", "get current user", "/api/v1/users/me"),
)


def run_profile(ctx: Context, key: str, label: str, path: str) -> report.Profile | None:
    """py-spy on the (single) worker while wrk drives `path` with 32 connections. `--gil`: only
    the thread holding the GIL is sampled, so the samples are the Python work that caps one
    worker's throughput, and samples / (rate x seconds) is how busy its GIL was."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("py-spy not found: profile skipped (it is in the dev dependency group)")
        return None
    target = ctx.server.worker_pids()[0]
    raw = OUT_DIR / f"profile-{key}.txt"
    url = f"http://{HOST}:{ctx.server.port}{path}"
    env = {"BENCH_TOKEN": ctx.tokens[dbsetup.BENCH_USER]}
    seconds = ctx.cfg.duration
    load = start_wrk("get.lua", url, 32, seconds + 2, env)
    time.sleep(1)
    spy = _spawn(
        [py_spy, "record", "--pid", str(target), "--duration", str(seconds), "--rate",
         str(PROFILE_RATE), "--gil", "--nonblocking", "--format", "raw", "--output", str(raw)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    spy_out, _ = spy.communicate(timeout=seconds + 60)
    stats = finish_wrk(load, seconds + 2, f"{ctx.server.workers}w-profile-{key}")
    if spy.returncode != 0 or not raw.exists():
        print(f"py-spy failed ({spy.returncode}): {spy_out.strip()[-400:]}")
        return None
    return report.summarise_profile(
        raw, label=label, load_rps=stats.rps, expected=PROFILE_RATE * seconds
    )


# --- A round: one server, one WEB_CONCURRENCY ----------------------------------------------


# The side-by-side method of ../shared/peer/README.md.
PEER_WARMUP, PEER_DURATION, PEER_CONNECTIONS = 3, 10, 32


def run_peer(ctx: Context, log: Callable[[str], None]) -> list[peer.Compared]:
    """TaskHub as deployed beside the FastAPI template, three rounds per scenario (peer.py)."""
    if not peer.prepared():
        log("the FastAPI template is not prepared (BENCH_PEER_MIRROR): no side-by-side rows")
        return []

    def measure(script: str, url: str, token: str) -> tuple[float, float]:
        env = {"BENCH_TOKEN": token}
        finish_wrk(start_wrk(script, url, PEER_CONNECTIONS, PEER_WARMUP, env), PEER_WARMUP, None)
        stats = finish_wrk(
            start_wrk(script, url, PEER_CONNECTIONS, PEER_DURATION, env), PEER_DURATION, None
        )
        time.sleep(PAUSE_SECONDS)
        return stats.rps, stats.p99_ms

    log("starting the FastAPI template beside TaskHub (../shared/peer/start.sh)")
    with peer.running_peer(free_port()) as template:
        base = f"http://{HOST}:{ctx.server.port}"
        compared = peer.compare(base, ctx.tokens[dbsetup.BENCH_USER], template, measure)
    for row in compared:
        log(
            f"  {row.label}: TaskHub {row.taskhub.median_rps:,.0f} req/s, the template "
            f"{row.peer.median_rps:,.0f} req/s: {row.ratio:.1f}x"
        )
    return compared


def run_round(
    cfg: Config, workers: int, user_ids: dict[str, str], first: bool, log: Callable[[str], None]
) -> tuple[list[report.Result], list[report.Profile], dict[str, str], list[peer.Compared]]:
    secret = secrets.token_urlsafe(36)  # 48 characters
    results: list[report.Result] = []
    profiles: list[report.Profile] = []
    compared: list[peer.Compared] = []
    with (
        running_server(workers, secret) as server,
        running_server(workers, secret, limits=False) as limits_off,
    ):
        tokens = {
            user: login(server.port, user)
            for user in (
                dbsetup.BENCH_USER,
                dbsetup.SMALL_USER,
                dbsetup.LARGE_USER,
                dbsetup.PROJECT_USER,
            )
        }
        tokens[TOKEN_USER] = access_token(server.port, tokens[dbsetup.BENCH_USER])
        cursors = {
            user: page_100_cursor(server.port, tokens[user])
            for user in (dbsetup.SMALL_USER, dbsetup.LARGE_USER)
        }
        walks = (
            ("proj_base", dbsetup.BENCH_USER, PROJECTS_PATH),
            ("proj", dbsetup.PROJECT_USER, PROJECTS_PATH),
            ("label", dbsetup.LARGE_USER, LABEL_PATH),
        )
        for name, user, path in walks:
            cursors[name] = page_100_cursor(server.port, tokens[user], path)
        ids = dbsetup.task_ids(user_ids[dbsetup.BENCH_USER], 500)
        ids_file = OUT_DIR / "patch-ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        project_task = dbsetup.project_task_ids(user_ids[dbsetup.PROJECT_USER], 1)[0]
        ctx = Context(cfg, server, tokens, cursors, ids[0], ids_file, project_task, limits_off)
        server_info = report.server_runtime(server.worker_pids())
        for sc in scenarios(ctx):
            if not (first or sc.every_round):
                continue
            if sc.key == "create" and (not cfg.only or "mixed" in cfg.only):
                # The mixed scenarios before create and patch change the data.
                for label, mixed in MIXED:
                    log(f"[{workers}w] {label}")
                    mixed_results = mixed(ctx)
                    results.extend(mixed_results)
                    for result in mixed_results:
                        _log_result(log, result)
                    time.sleep(AFTER_LOGINS_SECONDS)
            if cfg.only and sc.key not in cfg.only:
                continue
            log(f"[{workers}w] {sc.label} ({sc.connections} connections)")
            results.append(run_scenario(ctx, sc))
            _log_result(log, results[-1])
            time.sleep(AFTER_LOGINS_SECONDS if sc.key == "login" else PAUSE_SECONDS)
            if (
                sc.key == "me" and first and cfg.profile and not cfg.only
            ):  # before any login keeps bcrypt busy
                for key, label, path in PROFILED:
                    log(f"[{workers}w] py-spy profile under {label} (32 connections)")
                    profile = run_profile(ctx, key, label, path)
                    profiles += [profile] if profile else []
                    time.sleep(PAUSE_SECONDS)
        if first and (not cfg.only or "peer" in cfg.only):
            compared = run_peer(ctx, log)
    return results, profiles, server_info, compared


def _log_result(log: Callable[[str], None], r: report.Result) -> None:
    log(
        f"        {r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
        f"errors {r.errors}, CPU server {r.server_cpu:.0f} % PG {r.pg_cpu:.0f} % "
        f"wrk {r.wrk_cpu:.0f} % others {r.other_cpu:.0f} %"
    )


QUIET_PERCENT = 25.0  # of one core, used by processes that are not ours


def wait_for_quiet(limit_seconds: int, log: Callable[[str], None]) -> float:
    """On a shared machine other jobs steal the cores the server needs: wait (bounded) until
    the machine is nearly idle, and return the busy share seen last (% of one core)."""
    deadline = time.monotonic() + limit_seconds
    busy = 0.0
    for _ in range(1000):
        before = procstat.machine_busy_ticks()
        time.sleep(3)
        busy = 100.0 * (procstat.machine_busy_ticks() - before) / procstat.CLOCK_TICKS / 3
        if busy <= QUIET_PERCENT or time.monotonic() >= deadline:
            break
        log(f"the machine is busy with other jobs ({busy:.0f} % of a core): waiting")
    if busy > QUIET_PERCENT:
        log(
            f"still busy ({busy:.0f} %) after {limit_seconds} s: measuring anyway (see 'others CPU')"
        )
    return busy


def main() -> int:
    cfg = Config.from_env()
    if shutil.which("wrk") is None:
        print("make bench needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    try:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        machine = report.describe_machine(dbsetup.server_version())
        migrate_env = server_env(1, free_port(), secrets.token_urlsafe(36))
        if cfg.seed:
            log("recreating the taskhub_bench database and migrating")
            dbsetup.recreate_database()
            dbsetup.migrate(sys.executable, migrate_env, ROOT)
            log("seeding 1,000,000 tasks in SQL")
            seeded = dbsetup.seed()
            log(f"seeded {seeded.task_count:,} tasks in {seeded.seconds:.1f} s")
        else:
            # Migrations added since it was seeded apply to it too.
            dbsetup.migrate(sys.executable, migrate_env, ROOT)
            seeded = dbsetup.existing_seed()
            log(f"reusing the seeded database ({seeded.task_count:,} tasks)")
        log("counting round trips and capturing query plans (in-process, through a counting proxy)")
        probe = asyncio.run(run_probe(migrate_env, seeded.user_ids))
        rounds: list[report.Round] = []
        profiles: list[report.Profile] = []
        compared: list[peer.Compared] = []
        wait_for_quiet(cfg.quiet_wait, log)
        bare = None
        if not cfg.only or "bare" in cfg.only:
            log("calibration: a bare Starlette JSON endpoint, same server flags")
            bare = run_bare(cfg)
            _log_result(log, bare)
        for index, workers in enumerate(cfg.workers):
            if index:
                wait_for_quiet(cfg.quiet_wait, log)
            results, round_profiles, server_info, round_peer = run_round(
                cfg, workers, seeded.user_ids, index == 0, log
            )
            compared += round_peer
            if index == 0 and bare is not None:
                results.insert(0, bare)
            rounds.append(report.Round(workers=workers, results=results, server=server_info))
            profiles += round_profiles
            deleted = dbsetup.delete_created_tasks(seeded.user_ids[dbsetup.BENCH_USER])
            log(f"removed the {deleted:,} tasks the create scenario added")
        doc = report.Document(
            machine=machine,
            cfg={"duration": cfg.duration, "warmup": cfg.warmup, "wrk_timeout": WRK_TIMEOUT},
            seed=seeded,
            rounds=rounds,
            probe=probe,
            profiles=profiles,
            elapsed=time.monotonic() - started,
            peer=compared,
        )
        print()
        print(report.console_table(doc))
        report.write(cfg.doc, doc)
        (OUT_DIR / "results.json").write_text(report.to_json(doc))
        log(f"wrote {cfg.doc.relative_to(ROOT)} and {(OUT_DIR / 'results.json').relative_to(ROOT)}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server and wrk", file=sys.stderr)
        return 130
    finally:
        _stop_all()


if __name__ == "__main__":
    sys.exit(main())
