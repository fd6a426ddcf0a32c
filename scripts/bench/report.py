"""The results of `make bench`: the console table, docs/benchmarks.md and var/bench/results.json.

docs/benchmarks.md keeps whatever is written outside the generated block (the analysis), and
replaces what lies between the BEGIN/END markers on every run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BUSY_OTHERS = 25.0  # % of a core used by other jobs on the machine during a run: a noisy figure
BEGIN = "<!-- BEGIN make bench output: regenerated on every run, edit outside this block -->"
END = "<!-- END make bench output -->"

# The reference: the official full-stack FastAPI template on this kind of machine.
REFERENCE = {
    "list32": (210, 420.0, "sync routes, offset + count(*), no index on owner"),
    "list64": (0, None, "stalls: 40 threadpool threads wait on a 15-connection pool, then 500s"),
    "me": (600, 160.0, ""),
    "create": (300, 310.0, ""),
    "login": (12, 450.0, "Argon2 in the threadpool; both cores busy"),
    "burst_list": (98, 820.0, "-53 %, p99 2x: logins starve reads"),
    "bare": (33_000, 2.0, "bare Starlette JSON endpoint, same server flags: the ceiling"),
}


@dataclass
class Result:
    key: str
    label: str
    connections: int
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: str
    requests: int
    server_cpu: float
    pg_cpu: float
    wrk_cpu: float
    other_cpu: float
    rss_worker_mb: float
    rss_tree_mb: float
    # The same scenario on a server with rate limits off, run right after (None: not run).
    off_rps: float | None = None
    off_p99_ms: float | None = None


@dataclass
class Round:
    workers: int
    results: list[Result]
    server: dict[str, str]

    def get(self, key: str) -> Result | None:
        return next((r for r in self.results if r.key == key), None)


@dataclass
class Profile:
    label: str
    samples: int
    expected: int  # rate x seconds: samples / expected is the share of time the GIL was held
    load_rps: float
    self_top: list[tuple[str, float]]
    inclusive_top: list[tuple[str, float]]
    by_package: list[tuple[str, float]]
    raw_path: str


@dataclass
class Document:
    machine: dict[str, str]
    cfg: dict[str, Any]
    seed: Any
    rounds: list[Round]
    probe: Any
    profiles: list[Profile]
    elapsed: float
    # TaskHub as deployed beside the FastAPI template (scripts/bench/peer.py), if it ran.
    peer: list[Any] = dataclasses.field(default_factory=list)


# --- Machine ------------------------------------------------------------------------------


def describe_machine(postgres_version: str) -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "sqlalchemy", "psycopg", "bcrypt")
    )  # fmt: skip
    return {
        "CPU": f"{os.cpu_count()} x {model.group(1).strip() if model else '?'}",
        "nproc": str(os.cpu_count()),
        "RAM": f"{total_kb / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "PostgreSQL": postgres_version.split(" on ")[0],
        "Python": sys.version.split()[0],
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0]
        if (wrk.stdout or wrk.stderr)
        else "?",
        "packages": versions,
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def server_runtime(worker_pids: list[int]) -> dict[str, str]:
    """What the running workers actually loaded: uvloop and httptools are C extensions, so
    their shared objects show in /proc/<pid>/maps once in use."""
    if not worker_pids:
        return {}
    try:
        maps = Path(f"/proc/{worker_pids[0]}/maps").read_text()
    except OSError:
        return {}
    return {
        "event loop": "uvloop" if "uvloop/loop" in maps else "asyncio",
        "HTTP parser": "httptools" if "httptools/parser" in maps else "h11",
        "workers seen": str(len(worker_pids)),
    }


# --- py-spy -------------------------------------------------------------------------------

_LINE_NO = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    frame = _LINE_NO.sub(")", frame.strip())
    # Shorten ".../site-packages/sqlalchemy/orm/loading.py" to "sqlalchemy/orm/loading.py".
    return re.sub(r"\((?:.*/site-packages/|.*/src/|.*/lib/python3\.\d+/)", "(", frame)


def _package(frame: str) -> str:
    match = re.search(r"\(([^/)]+)", _function(frame))
    name = match.group(1) if match else "?"
    return name.removesuffix(".py")


# Frames every sample passes through (interpreter start-up, the event loop, ASGI middleware
# plumbing): left out of the inclusive table, which would otherwise list only them.
_PLUMBING = re.compile(
    r"<frozen runpy>|taskhub/__main__\.py|uvicorn/(main|server|_compat)\.py"
    r"|asyncio/(runners|base_events|events)\.py|threading\.py|\.__call__ \(|\.app \("
    r"|run_asgi \(|wrapped_app \(|_run_module_as_main|_run_code"
)


def summarise_profile(
    raw: Path, *, label: str, load_rps: float, expected: int, top: int = 15
) -> Profile:
    """py-spy's raw (collapsed) format: `frame;frame;...;leaf count` per line, root first."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        self_time[_function(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for name in {_function(f) for f in frames}:
            inclusive[name] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, 100.0 * c / total) for name, c in counter.most_common(n)] if total else []

    for name in [n for n in inclusive if _PLUMBING.search(n)]:
        del inclusive[name]
    return Profile(
        label=label,
        samples=total,
        expected=expected,
        load_rps=load_rps,
        self_top=share(self_time, top),
        inclusive_top=share(inclusive, top + 10),
        by_package=share(packages, top),
        raw_path=str(raw),
    )


# --- Tables -------------------------------------------------------------------------------

COLUMNS = (
    "scenario",
    "conns",
    "req/s",
    "limits off",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU",
    "PG CPU",
    "wrk CPU",
    "others CPU",
    "peak RSS MB/worker (tree)",
)


def _ratio(value: float, base: float | None) -> str:
    if not base:
        return ""
    ratio = value / base
    return f" ({ratio:.2g}x)" if ratio < 10 else f" ({ratio:,.0f}x)"


def _limits_off(r: Result) -> str:
    """The limits-off server's req/s, and how much the limiter costs (on vs off)."""
    if r.off_rps is None:
        return ""
    if not r.off_rps:
        return "0"
    return f"{r.off_rps:,.0f} ({100 * (r.rps - r.off_rps) / r.off_rps:+.0f} %)"


def _rows(round_: Round) -> list[list[str]]:
    health = round_.get("health")
    rows = []
    for r in round_.results:
        h = health if health is not None and r is not health else None
        errors = f"{r.errors:,}" + (f" ({r.error_detail})" if r.error_detail else "")
        rows.append(
            [
                r.label,
                str(r.connections),
                f"{r.rps:,.0f}" + _ratio(r.rps, h.rps if h else None),
                _limits_off(r),
                f"{r.p50_ms:.1f}" + _ratio(r.p50_ms, h.p50_ms if h else None),
                f"{r.p99_ms:.1f}" + _ratio(r.p99_ms, h.p99_ms if h else None),
                errors,
                f"{r.server_cpu:.0f} %" + _ratio(r.server_cpu, h.server_cpu if h else None),
                f"{r.pg_cpu:.0f} %",
                f"{r.wrk_cpu:.0f} %",
                f"{r.other_cpu:.0f} %" + (" (!)" if r.other_cpu > BUSY_OTHERS else ""),
                f"{r.rss_worker_mb:.0f}"
                + (f" ({r.rss_tree_mb:.0f})" if round_.workers > 1 else "")
                + _ratio(r.rss_worker_mb, h.rss_worker_mb if h else None),
            ]
        )
    return rows


def _markdown_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def console_table(doc: Document) -> str:
    parts = []
    for round_ in doc.rounds:
        rows = _rows(round_)
        widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) for i in range(len(COLUMNS))]
        fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
        parts.append(
            f"WEB_CONCURRENCY={round_.workers}  ({doc.cfg['duration']} s per scenario after a {doc.cfg['warmup']} s warm-up; (x) = ratio to /health)"
        )
        parts.append(fmt.format(*COLUMNS))
        parts += [fmt.format(*row) for row in rows]
        parts.append("")
    targets = evaluate_targets(doc)
    parts.append("Targets (issue 6 and 13: 1 worker; issue 12: each round):")
    parts += [f"  [{'met' if t[2] else 'MISSED'}] {t[0]}: {t[1]}" for t in targets]
    return "\n".join(parts)


# --- Targets ------------------------------------------------------------------------------


def _pct(value: float, goal: float) -> str:
    return f"{100.0 * (value - goal) / goal:+.0f} % vs the goal"


def machine_scale(round_: Round) -> float | None:
    """This machine's bare-Starlette req/s over the reference machine's: how much slower it is."""
    bare = round_.get("bare")
    return bare.rps / REFERENCE["bare"][0] if bare and bare.rps else None


def _scaled(rps: float, goal: float, scale: float | None) -> str:
    if scale is None:
        return ""
    local = goal * scale
    verdict = "met" if rps >= local else f"missed by {100 * (local - rps) / local:.0f} %"
    return f"; scaled to this machine (bare Starlette {scale:.2f}x the reference's) the goal is {local:,.0f} req/s: {verdict}"


def evaluate_targets(doc: Document) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the issue that `make bench` measures."""
    one = next((r for r in doc.rounds if r.workers == 1), None)
    if one is None:
        return []
    out: list[tuple[str, str, bool]] = []
    g = one.get
    list32, list256, me, create = g("list32"), g("list256"), g("me"), g("create")
    scale = machine_scale(one)
    if list32:
        goal = 5 * REFERENCE["list32"][0]
        out.append(
            (
                f"list first page, 32 conns: ≥ {goal:,} req/s (5x reference)",
                f"{list32.rps:,.0f} req/s, {_pct(list32.rps, goal)} ({list32.rps / REFERENCE['list32'][0]:.1f}x reference)"
                + _scaled(list32.rps, goal, scale),
                list32.rps >= goal,
            )
        )
        out.append(
            (
                "list first page, 32 conns: p99 ≤ 100 ms",
                f"p99 {list32.p99_ms:.0f} ms",
                list32.p99_ms <= 100,
            )
        )
    if list32 and list256:
        ok = list256.errors == 0 and list256.rps >= 0.8 * list32.rps
        out.append(
            (
                "list first page, 256 conns: no errors, req/s within 20 % of 32 conns",
                f"{list256.rps:,.0f} req/s ({100 * list256.rps / list32.rps:.0f} % of 32 conns), errors {list256.errors}"
                + (f" ({list256.error_detail})" if list256.error_detail else "")
                + f", p99 {list256.p99_ms:,.0f} ms",
                ok,
            )
        )
    for res, key, name in ((me, "me", "get current user"), (create, "create", "create")):
        if res:
            goal = 5 * REFERENCE[key][0]
            out.append(
                (
                    f"{name}, 32 conns: ≥ {goal:,} req/s (5x reference)",
                    f"{res.rps:,.0f} req/s, {_pct(res.rps, goal)} ({res.rps / REFERENCE[key][0]:.1f}x reference)"
                    + _scaled(res.rps, goal, scale),
                    res.rps >= goal,
                )
            )
    for row in doc.peer:
        out.append(
            (
                f"{row.label}: ≥ 8x the FastAPI template's req/s, same run (issue 20; moonshot 10x)",
                f"{row.ratio:.1f}x ({row.taskhub.median_rps:,.0f} vs {row.peer.median_rps:,.0f} "
                "req/s, medians of 3 rounds)",
                row.ratio >= 8,
            )
        )
        if row.key == "list":
            out.append(
                (
                    "list beside the template: p99 ≤ 60 ms at 32 connections (issue 20)",
                    f"p99 {row.taskhub.median_p99_ms:.0f} ms",
                    row.taskhub.median_p99_ms <= 60,
                )
            )
    paired = [r for r in doc.rounds[0].results if r.off_rps] if doc.rounds else []
    if paired:
        apart = {r.label: abs(r.rps - r.off_rps) / r.off_rps for r in paired if r.off_rps}
        worst = max(apart, key=lambda label: apart[label])
        out.append(
            (
                "the limiter on vs off: at most 5 % apart on every row (issue 20)",
                f"worst {100 * apart[worst]:.0f} % ({worst}); "
                + ", ".join(f"{label} {100 * gap:.0f} %" for label, gap in apart.items()),
                apart[worst] <= 0.05,
            )
        )
    for session_key, token_key, name in (
        ("list32", "list32_token", "list first page"),
        ("me", "me_token", "get current user"),
    ):
        session, token = g(session_key), g(token_key)
        if session and token and session.rps:
            share = token.rps / session.rps
            out.append(
                (
                    f"{name} with an access token: ≥ 90 % of the session's req/s (issue 21)",
                    f"{100 * share:.0f} % ({token.rps:,.0f} vs {session.rps:,.0f} req/s)",
                    share >= 0.9,
                )
            )
    burst = g("burst_list")
    if burst and list32:
        keep = burst.rps / list32.rps if list32.rps else 0
        p99x = burst.p99_ms / list32.p99_ms if list32.p99_ms else 0
        out.append(
            (
                "reads during a login burst keep ≥ 70 % throughput",
                f"{100 * keep:.0f} % ({burst.rps:,.0f} vs {list32.rps:,.0f} req/s)",
                keep >= 0.7,
            )
        )
        out.append(
            (
                "reads during a login burst: p99 ≤ 2x reads alone",
                f"{p99x:.2f}x ({burst.p99_ms:.0f} vs {list32.p99_ms:.0f} ms)",
                p99x <= 2,
            )
        )
    for page in ("p1", "p100"):
        big, small = g(f"scale_large_{page}"), g(f"scale_small_{page}")
        if big and small and small.p50_ms and small.p99_ms:
            r50, r99 = big.p50_ms / small.p50_ms, big.p99_ms / small.p99_ms
            label = "first page" if page == "p1" else "page 100 by cursor"
            out.append(
                (
                    f"scale, {label}: 100k-task user within 1.3x the 1k-task user's latency",
                    f"p50 {big.p50_ms:.1f} vs {small.p50_ms:.1f} ms ({r50:.2f}x), p99 {big.p99_ms:.1f} vs {small.p99_ms:.1f} ms ({r99:.2f}x)",
                    r50 <= 1.3 and r99 <= 1.3,
                )
            )
    if doc.probe is not None:
        reads = [c for c in doc.probe.costs if c.method == "GET"]
        worst = max((c.statements for c in reads), default=0)
        trips = max((c.round_trips for c in reads), default=0)
        out.append(
            (
                "authenticated read: ≤ 2 database round trips (session+user check, the query)",
                f"{worst} statements; {trips} round trips on the wire"
                + (
                    " (the driver adds BEGIN and COMMIT)" if trips > worst else " (no BEGIN/COMMIT)"
                ),
                worst <= 2,
            )
        )
        seq = [p.name for p in doc.probe.plans if any("Seq Scan" in f for f in p.flags)]
        sort = [
            p.name for p in doc.probe.plans if any("Sort" in f and "100,000" in f for f in p.flags)
        ]
        out.append(
            (
                "hot paths: no sequential scan (EXPLAIN)",
                "Seq Scan in: " + "; ".join(seq) if seq else "none",
                not seq,
            )
        )
        if sort:
            out.append(
                (
                    "hot paths: pages read through an index in keyset order",
                    "full sort of the owner's rows in: " + "; ".join(sort),
                    False,
                )
            )
    out += _project_targets(one, doc.probe)
    peak = max((r.rss_worker_mb for rnd in doc.rounds for r in rnd.results), default=0.0)
    out.append(("peak RSS per worker under load < 200 MB", f"{peak:.0f} MB", peak < 200))
    for round_ in doc.rounds:
        out += _abuse_targets(round_)
    return out


def _latency_ratio(target: Result, base: Result) -> tuple[str, bool]:
    """`target` within 1.3x of `base` in p50 and p99."""
    r50 = target.p50_ms / base.p50_ms if base.p50_ms else float("inf")
    r99 = target.p99_ms / base.p99_ms if base.p99_ms else float("inf")
    text = (
        f"p50 {target.p50_ms:.1f} vs {base.p50_ms:.1f} ms ({r50:.2f}x), "
        f"p99 {target.p99_ms:.1f} vs {base.p99_ms:.1f} ms ({r99:.2f}x)"
    )
    return text, r50 <= 1.3 and r99 <= 1.3


_SEQ_SCAN_ON_TASK = re.compile(r"Seq Scan on task\b")


def _plan_check(probe: Any, keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(plans that scan task sequentially, Execution Time of each plan) for the plans `keys`."""
    plans = [p for p in probe.plans if getattr(p, "key", "") in keys]
    seq = [p.key for p in plans if _SEQ_SCAN_ON_TASK.search(p.custom + p.generic)]
    times = [f"{p.key} {_exec_ms(p.custom)} (generic {_exec_ms(p.generic)})" for p in plans]
    return seq, times


def _label_plan_target(plans: list[Any]) -> tuple[str, str, bool]:
    """The plan the app really runs for the label filter: the generic one once psycopg prepares
    the statement (PostgreSQL switches to it when it looks no dearer), else the custom one. It
    must walk an index in page order, not sort every matching task of the user."""
    findings = []
    ok = True
    for plan in plans:
        runs = "generic" if plan.prepared else "custom"
        text = plan.generic if plan.prepared else plan.custom
        sorted_rows = [
            int(m.group(2)) for m in _SCAN_ROWS.finditer(text) if "Bitmap Heap Scan" in m.group(1)
        ]
        widest = max(sorted_rows, default=0)
        bad = widest > 1000
        ok = ok and not bad
        findings.append(
            f"{plan.key}: sent {'prepared' if plan.prepared else 'unprepared'}, runs the {runs} "
            f"plan, {_exec_ms(text)}" + (f", a bitmap of {widest:,} rows sorted" if bad else "")
        )
    return (
        "label filter: the plan the app runs (generic once prepared) walks an index in page order",
        "; ".join(findings),
        ok,
    )


_SCAN_ROWS = re.compile(r"(Bitmap Heap Scan)[^\n]*actual time=\S+ rows=(\d+)")


def _project_targets(one: Round, probe: Any) -> list[tuple[str, str, bool]]:
    """Issue 13: listing across projects, a project task by id, the label filter (1 worker)."""
    g = one.get
    out: list[tuple[str, str, bool]] = []
    pairs = (
        ("proj_p1", "proj_base_p1", "first page (limit 20)"),
        ("proj_p1_l100", "proj_base_p1_l100", "first page (limit 100)"),
        ("proj_p100", "proj_base_p100", "page 100 by cursor (limit 20)"),
    )
    for key, base_key, page in pairs:
        target, base = g(key), g(base_key)
        if target and base:
            text, ok = _latency_ratio(target, base)
            out.append(
                (
                    f"projects, {page}: a member of 50 projects (10k tasks in them) within 1.3x a "
                    "personal-only user with 10k tasks",
                    text,
                    ok,
                )
            )
    get_project, get_personal = g("get_project"), g("get")
    if get_project and get_personal and get_personal.rps:
        share = get_project.rps / get_personal.rps
        out.append(
            (
                "get one task: a project task ≥ 90 % of a personal task's req/s",
                f"{100 * share:.0f} % ({get_project.rps:,.0f} vs {get_personal.rps:,.0f} req/s), "
                f"p99 {get_project.p99_ms:.1f} vs {get_personal.p99_ms:.1f} ms",
                share >= 0.9,
            )
        )
    if probe is not None:
        cost = next((c for c in probe.costs if c.name.startswith("get one project task")), None)
        if cost is not None:
            out.append(
                (
                    "get one project task: 2 statements (auth check + one query)",
                    f"{cost.statements} statements, {cost.round_trips} round trips, status {cost.status}",
                    cost.statements <= 2 and cost.status == 200,
                )
            )
    label1, label100 = g("label_p1"), g("label_p100")
    if label1 and label100:
        text, ok = _latency_ratio(label100, label1)
        unfiltered = g("proj_base_p1")  # the same page size, no filter, 10k tasks
        if unfiltered:
            text += (
                f"; page 1 is {label1.p50_ms / unfiltered.p50_ms:.1f}x an unfiltered page 1 of a "
                f"10k-task user at p50 ({unfiltered.p50_ms:.1f} ms)"
            )
        out.append(("label filter, 100k-task user: page 100 within 1.3x page 1", text, ok))
    if probe is not None:
        for keys, name in (
            (("proj_p1", "proj_p100", "proj_base_p1", "proj_base_p100"), "listing across projects"),
            (("label_p1", "label_p100"), "label filter"),
            (("get_project",), "get one project task"),
        ):
            seq, times = _plan_check(probe, keys)
            if not times:
                continue
            out.append(
                (
                    f"{name}: no Seq Scan on task (EXPLAIN, custom and generic plans)",
                    ("Seq Scan on task in: " + ", ".join(seq) if seq else "none")
                    + "; execution "
                    + "; ".join(times),
                    not seq,
                )
            )
        label_plans = [
            p for p in probe.plans if getattr(p, "key", "") in ("label_p1", "label_p100")
        ]
        if label_plans:
            out.append(_label_plan_target(label_plans))
            runs = [p.generic if p.prepared else p.custom for p in label_plans]
            indexed = all("ix_task_label_keys" in t or "Index Scan" in t for t in runs)
            via = sorted(
                {
                    "GIN ix_task_label_keys" if "ix_task_label_keys" in t else "index walk"
                    for t in runs
                }
            )
            out.append(
                (
                    "label filter: index-backed (the GIN index or an index walk, in the plan the app runs)",
                    ", ".join(via),
                    indexed,
                )
            )
    return out


def _succeeded_rps(r: Result) -> float:
    """Requests per second answered 2xx/3xx (a refused login is a wrk error)."""
    return r.rps * (r.requests - r.errors) / r.requests if r.requests else 0.0


def _abuse_targets(round_: Round) -> list[tuple[str, str, bool]]:
    """Issue 12's targets, on every round (1 and 2 workers)."""
    g = round_.get
    workers = f"{round_.workers} worker{'s' if round_.workers > 1 else ''}"
    out: list[tuple[str, str, bool]] = []
    login, logins_saturated = g("login"), g("saturated_login")
    list256, list_saturated = g("list256"), g("saturated_list")
    if login and logins_saturated and login.rps:
        keep = _succeeded_rps(logins_saturated) / _succeeded_rps(login)
        timeouts = "timeout" in logins_saturated.error_detail
        out.append(
            (
                f"logins during saturating reads keep ≥ 50 % of their rate alone, no timeout ({workers})",
                f"{100 * keep:.0f} % ({_succeeded_rps(logins_saturated):.1f} vs {_succeeded_rps(login):.1f}/s)"
                + (f", errors: {logins_saturated.error_detail}" if logins_saturated.errors else ""),
                keep >= 0.5 and not timeouts,
            )
        )
    if list256 and list_saturated and list256.rps:
        keep = list_saturated.rps / list256.rps
        out.append(
            (
                f"saturating reads keep ≥ 70 % during logins ({workers})",
                f"{100 * keep:.0f} % ({list_saturated.rps:,.0f} vs {list256.rps:,.0f} req/s)",
                keep >= 0.7,
            )
        )
    list32, flooded = g("list32"), g("flood_list")
    if list32 and flooded and list32.rps:
        keep = flooded.rps / list32.rps
        out.append(
            (
                f"reads during a flood of successful logins keep ≥ 70 %, no error to readers ({workers})",
                f"{100 * keep:.0f} % ({flooded.rps:,.0f} vs {list32.rps:,.0f} req/s), readers' errors {flooded.errors}",
                keep >= 0.7 and flooded.errors == 0,
            )
        )
    me, held = g("me"), g("held_me")
    if me and held and me.rps:
        delay = held.p99_ms - me.p99_ms
        keep = held.rps / me.rps
        out.append(
            (
                f"get current user with 500 half-sent requests held: p99 ≤ alone + 100 ms, "
                f"≥ 90 % of its req/s alone ({workers})",
                f"p99 {held.p99_ms:.1f} vs {me.p99_ms:.1f} ms (+{delay:.1f} ms), "
                f"{held.rps:,.0f} vs {me.rps:,.0f} req/s ({100 * keep:.0f} %), errors {held.errors}",
                delay <= 100 and keep >= 0.9 and held.errors == 0,
            )
        )
    return out


# --- Markdown -----------------------------------------------------------------------------


def render(doc: Document) -> str:
    m = doc.machine
    lines = [
        BEGIN,
        "",
        f"## Latest run ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {doc.elapsed / 60:.1f} min)",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in m.items()],
        f"| data | {doc.seed.task_count:,} tasks (bench user 10,000; scale users 1,000 and 100,000; a member of 50 of 250 projects, 10,000 tasks in them; 0-2 of 10 labels per task), seeded in SQL in {doc.seed.seconds:.0f} s |",
        f"| method | wrk 1 thread, {doc.cfg['warmup']} s warm-up then {doc.cfg['duration']} s measured per scenario, --timeout {doc.cfg['wrk_timeout']}; list pages of 50 (scale: pages of 10, 4 connections; projects and label: the default 20, 4 connections) |",
        "",
        "Every figure in parentheses is its ratio to `/health` measured in the same round (absolute "
        "numbers on a shared machine drift by ±15 %). Server CPU is the server process tree's "
        "user+sys time over the run's wall time (100 % = one core; this machine has "
        f"{m.get('nproc', '?')}); PG CPU is that of every PostgreSQL process, wrk CPU the load "
        "generator's (on the same cores). "
        "Errors are wrk's non-2xx/3xx responses plus socket errors and timeouts. "
        "Others CPU is what the rest of the machine used meanwhile (other jobs on a shared host); "
        f"(!) marks a run during which they took more than {BUSY_OTHERS:.0f} % of a core, whose "
        "figures are therefore pessimistic.",
        "",
    ]
    for round_ in doc.rounds:
        runtime = ", ".join(f"{k}: {v}" for k, v in round_.server.items())
        lines += [
            f"### WEB_CONCURRENCY={round_.workers}",
            "",
            f"Server: {runtime}." if runtime else "",
            "",
            _markdown_table(COLUMNS, _rows(round_)),
            "",
        ]
    if doc.peer:
        lines += [
            "### Beside the FastAPI template, in this run (issue 20)",
            "",
            "TaskHub as deployed (production settings, rate limits on and shared in Redis) and the "
            "FastAPI full-stack template (`../shared/peer/`), one worker each, PostgreSQL on "
            "loopback, 10,000 tasks or items for the bench user; wrk 32 connections, 3 s warm-up, "
            "10 s measured, three rounds with the order flipped each round; medians.",
            "",
            _markdown_table(
                (
                    "scenario",
                    "TaskHub req/s",
                    "template req/s",
                    "ratio",
                    "TaskHub p99 ms",
                    "template p99 ms",
                ),
                [
                    [
                        row.label,
                        " / ".join(f"{v:,.0f}" for v in row.taskhub.rps),
                        " / ".join(f"{v:,.0f}" for v in row.peer.rps),
                        f"{row.ratio:.1f}x",
                        f"{row.taskhub.median_p99_ms:.0f}",
                        f"{row.peer.median_p99_ms:.0f}",
                    ]
                    for row in doc.peer
                ],
            ),
            "",
        ]
    lines += ["### Against the reference (official full-stack FastAPI template, 1 worker)", ""]
    one = next((r for r in doc.rounds if r.workers == 1), None)
    ref_rows = []
    for key, (rps, p99, note) in REFERENCE.items():
        res = one.get(key) if one else None
        if res is None:
            continue
        times = f"{res.rps / rps:.1f}x" if rps else "∞ (reference stalls)"
        scale = machine_scale(one) if one else None
        scaled = f"{res.rps / (rps * scale):.1f}x" if rps and scale else "—"
        ref_rows.append(
            [
                res.label,
                str(res.connections),
                f"{rps:,}",
                f"{p99:.0f}" if p99 else "—",
                f"{res.rps:,.0f}",
                f"{res.p99_ms:.0f}",
                times,
                scaled,
                note,
            ]
        )
    lines += [
        _markdown_table(
            [
                "scenario",
                "conns",
                "reference req/s",
                "reference p99 ms",
                "TaskHub req/s",
                "TaskHub p99 ms",
                "TaskHub / reference",
                "TaskHub / (reference scaled to this machine)",
                "reference note",
            ],
            ref_rows,
        ),
        "",
    ]
    lines += ["### Targets (issue 6 and 13: 1 worker; issue 12: each round)", ""]
    lines += [
        _markdown_table(
            ["target", "measured", "verdict"],
            [
                [t, measured, "met" if ok else "**missed**"]
                for t, measured, ok in evaluate_targets(doc)
            ],
        ),
        "",
    ]
    lines += ["The test-suite target (< 60 s per backend) is not measured by `make bench`.", ""]
    lines += _probe_section(doc.probe)
    if not doc.profiles:
        lines += [
            "### Profile",
            "",
            "Not taken in this run (BENCH_PROFILE=0, or py-spy unavailable).",
            "",
        ]
    for profile in doc.profiles:
        lines += _profile_section(profile)
    lines += [END]
    return "\n".join(lines) + "\n"


def _probe_section(probe: Any) -> list[str]:
    if probe is None:
        return []
    lines = [
        "### Database round trips per request",
        "",
        "Counted in-process (same settings, same code) through a loopback proxy in front of "
        "PostgreSQL that counts each client message the driver then waits on (a simple Query, or "
        "the Sync closing a Parse/Bind/Execute batch), after 10 identical requests, i.e. once "
        'psycopg has prepared the statements. "Statements" is what the app executed through its one data-access handle.',
        "",
        _markdown_table(
            ["request", "status", "statements", "round trips", "what crossed the wire"],
            [
                [
                    c.name,
                    str(c.status),
                    str(c.statements),
                    str(c.round_trips) + ("" if c.stable else " (varied)"),
                    "<br>".join(_short(t) for t in c.trips),
                ]
                for c in probe.costs
            ],
        ),
        "",
        "### Query plans (EXPLAIN (ANALYZE, BUFFERS), warm cache)",
        "",
        'The statements the app sent, captured with their parameters. "Custom" is the plan for '
        'these values; "generic" is the parameter-independent plan PostgreSQL may switch to once '
        "psycopg prepares the statement (its 6th execution on a connection), forced here with "
        "`plan_cache_mode = force_generic_plan`.",
        "",
    ]
    for plan in probe.plans:
        flags = "; ".join(plan.flags) if plan.flags else "no Seq Scan, no explicit Sort"
        custom_ms = _exec_ms(plan.custom)
        generic_ms = _exec_ms(plan.generic)
        lines += [
            f"#### {plan.name}",
            "",
            f"Execution: custom {custom_ms}, generic {generic_ms}. Flags: {'**' + flags + '**' if plan.flags else flags}.",
            "",
            "<details><summary>SQL and plans</summary>",
            "",
            "```sql",
            plan.statement.strip(),
            "```",
            "",
            "Custom plan:",
            "",
            "```",
            plan.custom,
            "```",
            "",
            "Generic plan:",
            "",
            "```",
            plan.generic,
            "```",
            "",
            "</details>",
            "",
        ]
    return lines


def _exec_ms(plan: str) -> str:
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return f"{float(match.group(1)):.2f} ms" if match else "?"


def _short(text: str, limit: int = 90) -> str:
    text = text.replace("|", "\\|")
    return "`" + (text if len(text) <= limit else text[: limit - 1] + "…") + "`"


def _profile_section(profile: Profile) -> list[str]:
    busy = 100.0 * profile.samples / profile.expected if profile.expected else 0.0
    return [
        f"### Profile: py-spy under {profile.label} (1 worker, 32 connections)",
        "",
        f"`py-spy record --gil --rate 100 --nonblocking` on the worker: {profile.samples:,} samples "
        f"holding the GIL out of {profile.expected:,} ticks, i.e. the worker's Python thread was "
        f"busy {busy:.0f} % of the time, while the load ran at {profile.load_rps:,.0f} req/s. "
        f"Raw stacks: var/bench/{Path(profile.raw_path).name}.",
        "",
        "By package of the innermost frame (self time):",
        "",
        _markdown_table(
            ["package", "% of samples"], [[n, f"{p:.1f}"] for n, p in profile.by_package]
        ),
        "",
        "Innermost function (self time):",
        "",
        _markdown_table(
            ["function", "% self"], [[_code(n), f"{p:.1f}"] for n, p in profile.self_top]
        ),
        "",
        "On the stack (inclusive time, event-loop and middleware plumbing left out):",
        "",
        _markdown_table(
            ["function", "% inclusive"],
            [[_code(n), f"{p:.1f}"] for n, p in profile.inclusive_top],
        ),
        "",
    ]


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def write(path: Path, doc: Document) -> None:
    block = render(doc)
    existing = path.read_text() if path.exists() else ""
    if BEGIN in existing and END in existing:
        head, _, rest = existing.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block.rstrip("\n") + tail
    else:
        text = (
            "# Benchmarks\n\n`make bench` (scripts/bench/) measures TaskHub under load; see the "
            "module docstring of scripts/bench/run.py for the method and overrides.\n\n"
            + block
            + "\n## Analysis\n\n(Written by hand: which targets are met, the profile's top costs, "
            "what changed them.)\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def to_json(doc: Document) -> str:
    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return str(value)

    return json.dumps(dataclasses.asdict(doc), default=default, indent=2)
