"""Per-request database work, measured in-process: the app is built with the production settings
but its DATABASE_URL goes through a counting proxy (wire.py), and an observer of the app's one
data-access handle (taskhub.db.runner) captures each statement with its parameters, which are
then run under EXPLAIN (ANALYZE, BUFFERS)
on a direct connection, both as planned for those values (custom plan) and as the generic plan
PostgreSQL may switch to once psycopg has prepared the statement (after 5 executions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import dbsetup
import httpx
import psycopg
from psycopg import sql
from wire import WireCounter

REPEATS = 10  # psycopg prepares a statement after 5 executions; the last repeats are steady
PAGE_WALK = 99
SCALE_LIMIT = 10
PAGE_LIMIT = 50
FILTERED_QUERY = {"status": "todo", "priority": "high", "sort": "-due_at", "limit": PAGE_LIMIT}
# Issue 13: the default listing (limit 20) across projects, and the label filter.
PROJECTS_PATH = "/api/v1/tasks"
LABEL_PATH = f"/api/v1/tasks?{urlencode({'label': dbsetup.LABEL})}"


@dataclass
class RequestCost:
    name: str
    method: str
    path: str
    status: int
    statements: int  # what the app executed (ORM and hot-path statements)
    round_trips: int  # what crossed the wire, BEGIN and COMMIT included
    trips: list[str] = field(default_factory=list)
    stable: bool = True  # the same count in each of the last repeats


@dataclass
class Plan:
    name: str
    statement: str
    custom: str
    generic: str
    flags: list[str]
    key: str = ""  # what the targets look a plan up by
    # Whether the app sent the statement prepared (after psycopg's 5 executions), i.e. whether
    # PostgreSQL may run its generic plan; None where the probe did not look.
    prepared: bool | None = None


@dataclass
class ProbeResult:
    costs: list[RequestCost]
    plans: list[Plan]


@dataclass
class _Capture:
    """What the app's data-access handle sends, as PostgreSQL receives it (its observer)."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, sql: str, parameters: Mapping[str, Any]) -> None:
        if sql not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.statements.append((sql, dict(parameters)))


async def run_probe(settings_env: Mapping[str, str], user_ids: Mapping[str, str]) -> ProbeResult:
    from taskhub.config import Settings
    from taskhub.main import create_app

    counter = WireCounter(upstream_host=dbsetup.PG_HOST, upstream_port=dbsetup.PG_PORT)
    await counter.start()
    proxied = (
        f"postgresql://{dbsetup.PG_USER}@127.0.0.1:{counter.port}/{dbsetup.BENCH_DB}"
        "?sslmode=disable&gssencmode=disable"
    )
    env = {key: value for key, value in settings_env.items() if key in Settings.model_fields}
    env["DATABASE_URL"] = proxied
    # One connection: psycopg prepares per connection, and the pool hands idle connections out in
    # turn, so with more the repeats would reach "prepared" on each at a different time.
    env["DB_POOL_SIZE"] = "1"
    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type]
    app = create_app(settings)
    capture = _Capture()
    app.state.database.observers.append(capture)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
                return await _measure(client, counter, capture, user_ids)
    finally:
        await counter.close()


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login",
        data={"grant_type": "password", "username": username, "password": dbsetup.BENCH_PASSWORD},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _measure(
    client: httpx.AsyncClient,
    counter: WireCounter,
    capture: _Capture,
    user_ids: Mapping[str, str],
) -> ProbeResult:
    bench = await _login(client, dbsetup.BENCH_USER)
    member = await _login(client, dbsetup.PROJECT_USER)
    task_id = dbsetup.task_ids(user_ids[dbsetup.BENCH_USER], 1)[0]
    project_task_id = dbsetup.project_task_ids(user_ids[dbsetup.PROJECT_USER], 1)[0]
    patched_id = await _created_id(client, bench)  # patched, then removed with the other creates
    requests: list[tuple[str, str, str, dict[str, Any] | None, dict[str, str]]] = [
        ("get current user", "GET", "/api/v1/users/me", None, bench),
        ("list first page", "GET", f"/api/v1/tasks?limit={PAGE_LIMIT}", None, bench),
        ("list filter + sort", "GET", f"/api/v1/tasks?{urlencode(FILTERED_QUERY)}", None, bench),
        ("get one task", "GET", f"/api/v1/tasks/{task_id}", None, bench),
        ("get one project task (50-project user)", "GET", f"/api/v1/tasks/{project_task_id}", None, member),
        ("list across 50 projects, page 1", "GET", PROJECTS_PATH, None, member),
        ("create", "POST", "/api/v1/tasks", {"title": "probe task", "priority": "low"}, bench),
        ("patch", "PATCH", f"/api/v1/tasks/{patched_id}", {"title": "probe patch"}, bench),
    ]  # fmt: skip
    costs: list[RequestCost] = []
    captured: dict[str, list[tuple[str, Any]]] = {}
    for name, method, path, body, headers in requests:
        counts: list[tuple[int, int]] = []
        cost: RequestCost | None = None
        for _ in range(REPEATS):
            mark = counter.mark()
            capture.statements.clear()
            response = await client.request(method, path, headers=headers, json=body)
            trips = counter.since(mark)
            counts.append((len(capture.statements), len(trips)))
            cost = RequestCost(
                name, method, path, response.status_code, len(capture.statements), len(trips), trips
            )
            captured.setdefault(name, list(capture.statements))
        if cost is None:
            raise RuntimeError("no request made")
        cost.stable = len(set(counts[-3:])) == 1
        costs.append(cost)
    plans = [
        _explain(
            "auth check (session + user, every authenticated request)",
            captured["get current user"][0],
        ),
        _explain(
            "list first page, bench user (10k tasks), -created_at, limit 50",
            _task_query(captured["list first page"]),
        ),
        _explain(
            "list filter status=todo&priority=high, sort -due_at, bench user",
            _task_query(captured["list filter + sort"]),
        ),
    ]
    for username in (dbsetup.LARGE_USER, dbsetup.SMALL_USER):
        headers = await _login(client, username)
        first, hundredth = await _walk(client, headers, capture)
        tasks = "100k" if username == dbsetup.LARGE_USER else "1k"
        plans.append(
            _explain(f"scale: first page, {username} ({tasks} tasks), limit {SCALE_LIMIT}", first)
        )
        plans.append(
            _explain(f"scale: page 100 by keyset cursor, {username} ({tasks} tasks)", hundredth)
        )
    plans.append(
        _explain(
            "get one project task, projects_50 (a member of its project)",
            _task_query(captured["get one project task (50-project user)"]),
            key="get_project",
        )
    )
    walks = (
        ("proj", dbsetup.PROJECT_USER, PROJECTS_PATH, "projects: 50-project user (10k tasks in projects), limit 20"),
        ("proj_base", dbsetup.BENCH_USER, PROJECTS_PATH, "projects baseline: personal-only user bench (10k tasks), limit 20"),
        ("label", dbsetup.LARGE_USER, LABEL_PATH, f"label={dbsetup.LABEL}: scale_large (100k personal tasks), limit 20"),
    )  # fmt: skip
    for key, username, path, title in walks:
        headers = await _login(client, username)
        first, hundredth = await _walk(client, headers, capture, path, counter)
        prepared = _sent_prepared(counter.trips[-2:])
        for page, captured_query in (("p1", first), ("p100", hundredth)):
            plan = _explain(
                f"{title}, page {page[1:]}" + (" by keyset cursor" if page == "p100" else ""),
                captured_query,
                key=f"{key}_{page}",
            )
            plan.prepared = prepared
            plans.append(plan)
    _cleanup(user_ids[dbsetup.BENCH_USER])
    return ProbeResult(costs=costs, plans=plans)


async def _created_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/api/v1/tasks", headers=headers, json={"title": "probe task"})
    response.raise_for_status()
    return str(response.json()["id"])


def _cleanup(bench_user_id: str) -> None:
    with psycopg.connect(dbsetup.bench_dsn()) as conn:
        conn.execute(
            "DELETE FROM task WHERE owner_id = %s AND title LIKE 'probe %%'", (bench_user_id,)
        )
        conn.commit()


def _sent_prepared(trips: list[str]) -> bool:
    """Whether the task query among a request's round trips went as a prepared statement."""
    return any(trip.startswith("[prepared") and "FROM task" in trip for trip in trips)


async def _walk(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    capture: _Capture,
    path: str = f"/api/v1/tasks?limit={SCALE_LIMIT}",
    counter: WireCounter | None = None,
) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """The statements of page 1 and of page 100, reached through 99 next_cursor links (the
    counter, if given, then holds page 100's round trips last)."""
    joiner = "&" if "?" in path else "?"
    capture.statements.clear()
    response = await client.get(path, headers=headers)
    response.raise_for_status()
    first = _task_query(capture.statements)
    for _ in range(PAGE_WALK):
        cursor = response.json()["next_cursor"]
        if cursor is None:
            raise RuntimeError("fewer than 100 pages")
        capture.statements.clear()
        response = await client.get(path + joiner + urlencode({"cursor": cursor}), headers=headers)
        response.raise_for_status()
    return first, _task_query(capture.statements)


def _task_query(statements: list[tuple[str, Any]]) -> tuple[str, Any]:
    for statement, parameters in statements:
        if "FROM task" in statement:
            return statement, parameters
    raise RuntimeError("no task query captured")


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _explain(name: str, captured: tuple[str, Any], *, key: str = "") -> Plan:
    statement, parameters = captured
    params = dict(parameters or {})
    with psycopg.connect(dbsetup.bench_dsn(), autocommit=True) as conn:
        conn.execute("SET timezone = 'UTC'")
        explain = "EXPLAIN (ANALYZE, BUFFERS) " + statement
        conn.execute(explain, params)  # once to warm the cache; the second run is reported
        custom = "\n".join(row[0] for row in conn.execute(explain, params).fetchall())
        # The same statement as a server-side prepared statement, forced onto its generic plan.
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        prepared = _PLACEHOLDER.sub(number, statement).replace("%%", "%")
        conn.execute("DEALLOCATE ALL")
        conn.execute(sql.SQL("PREPARE bench_q AS {}").format(sql.SQL(prepared)))  # type: ignore[arg-type]
        conn.execute("SET plan_cache_mode = force_generic_plan")
        execute = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({})").format(
            sql.SQL(", ").join(sql.Literal(params[key]) for key in names)
        )
        conn.execute(execute)
        generic = "\n".join(row[0] for row in conn.execute(execute).fetchall())
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE ALL")
    return Plan(
        name=name,
        statement=statement,
        custom=custom,
        generic=generic,
        flags=_flags(custom, generic),
        key=key,
    )


_SORT_ROWS = re.compile(r"->\s+Sort .*?actual time=\S+ rows=(\d+)")
_SCAN_ROWS = re.compile(
    r"(Seq Scan|Bitmap Heap Scan|Index Scan|Index Only Scan)[^\n]*actual time=\S+ rows=(\d+)"
)


# A Seq Scan that ran. A restricted token's subplan over `access_token_project` is planned for
# every scoped statement and never runs for a session (its `caller_reach IS NULL` arm decides).
_SEQ_SCAN_RUN = re.compile(r"Seq Scan(?![^\n]*never executed)")


def _flags(custom: str, generic: str) -> list[str]:
    flags = []
    for label, text in (("custom", custom), ("generic", generic)):
        if _SEQ_SCAN_RUN.search(text):
            flags.append(f"Seq Scan ({label} plan)")
        if re.search(r"^\s*(->\s+)?Sort\b", text, re.MULTILINE):
            scanned = max((int(m.group(2)) for m in _SCAN_ROWS.finditer(text)), default=0)
            flags.append(
                f"explicit Sort over {scanned:,} scanned rows ({label} plan): not keyset-ordered by an index"
            )
    return flags
