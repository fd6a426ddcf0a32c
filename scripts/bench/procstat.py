"""CPU time and resident memory of a process tree, read from /proc (Linux only, no psutil)."""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int  # utime + stime


def _read_stat(pid: int) -> ProcInfo | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces: split after the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15, ppid field 4.
    return ProcInfo(
        pid=pid, ppid=int(fields[1]), comm=comm, cpu_ticks=int(fields[11]) + int(fields[12])
    )


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def all_processes() -> dict[int, ProcInfo]:
    found: dict[int, ProcInfo] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _read_stat(int(entry.name))
            if info is not None:
                found[info.pid] = info
    return found


def tree_of(root: int, processes: dict[int, ProcInfo]) -> list[int]:
    """The root and all its descendants (uvicorn's supervisor and its worker processes)."""
    children: dict[int, list[int]] = {}
    for info in processes.values():
        children.setdefault(info.ppid, []).append(info.pid)
    result, todo = [], [root]
    while todo and len(result) < 10_000:
        pid = todo.pop()
        if pid in processes:
            result.append(pid)
            todo.extend(children.get(pid, []))
    return result


def postgres_pids(processes: dict[int, ProcInfo]) -> list[int]:
    return [info.pid for info in processes.values() if info.comm.startswith("postgres")]


def reaped_children_seconds() -> float:
    """CPU of this process's children that have exited and been waited for (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_ticks() -> int:
    """All CPUs' busy time since boot: the first line of /proc/stat less idle and iowait."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]  # user..steal, without idle and iowait


def cpu_ticks(pids: list[int], processes: dict[int, ProcInfo]) -> dict[int, int]:
    return {pid: processes[pid].cpu_ticks for pid in pids if pid in processes}


@dataclass
class Usage:
    wall_seconds: float = 0.0
    server_cpu_percent: float = 0.0  # of one core: 200 % is both cores of this machine
    postgres_cpu_percent: float = 0.0
    wrk_cpu_percent: float = 0.0  # the load generator(s): wrk, on the same two cores
    # Everything else that ran on the machine meanwhile (other users' jobs on a shared host).
    other_cpu_percent: float = 0.0
    peak_rss_tree_bytes: int = 0
    peak_rss_process_bytes: int = 0  # the largest single process: a worker
    processes: int = 0


@dataclass
class Sampler:
    """Samples the server tree's memory every POLL_SECONDS while a load runs; CPU from
    the difference of utime+stime between start() and stop()."""

    root_pid: int
    usage: Usage = field(default_factory=Usage)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _server_start: dict[int, int] = field(default_factory=dict)
    _pg_start: dict[int, int] = field(default_factory=dict)
    _children_start: float = 0.0
    _machine_start: int = 0

    def start(self) -> None:
        processes = all_processes()
        self._server_start = cpu_ticks(tree_of(self.root_pid, processes), processes)
        self._pg_start = cpu_ticks(postgres_pids(processes), processes)
        self._children_start = reaped_children_seconds()
        self._machine_start = machine_busy_ticks()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._poll, name="rss-sampler", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        # Bounded: stops when asked, and never runs longer than an hour.
        deadline = time.monotonic() + 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._sample_memory()
            self._stop.wait(POLL_SECONDS)

    def _sample_memory(self) -> None:
        pids = tree_of(self.root_pid, all_processes())
        sizes = [_rss_bytes(pid) for pid in pids]
        if sizes:
            self.usage.peak_rss_tree_bytes = max(self.usage.peak_rss_tree_bytes, sum(sizes))
            self.usage.peak_rss_process_bytes = max(self.usage.peak_rss_process_bytes, max(sizes))
            self.usage.processes = max(self.usage.processes, len(pids))

    def stop(self) -> Usage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample_memory()
        wall = time.monotonic() - self._started
        processes = all_processes()
        server_end = cpu_ticks(tree_of(self.root_pid, processes), processes)
        pg_end = cpu_ticks(postgres_pids(processes), processes)
        machine = 100.0 * (machine_busy_ticks() - self._machine_start) / CLOCK_TICKS / wall
        u = self.usage
        u.wall_seconds = wall
        u.server_cpu_percent = _percent(self._server_start, server_end, wall)
        u.postgres_cpu_percent = _percent(self._pg_start, pg_end, wall)
        # Call stop() after the load generators have been waited for, so their CPU is counted.
        u.wrk_cpu_percent = 100.0 * (reaped_children_seconds() - self._children_start) / wall
        others = machine - u.server_cpu_percent - u.postgres_cpu_percent - u.wrk_cpu_percent
        u.other_cpu_percent = max(0.0, others)
        return u


def _percent(start: dict[int, int], end: dict[int, int], wall: float) -> float:
    """CPU used over the interval, in % of one core. A process that started during the
    interval counts from zero; one that ended during it is lost (the pools keep theirs)."""
    ticks = sum(value - start.get(pid, 0) for pid, value in end.items())
    return 100.0 * ticks / CLOCK_TICKS / wall if wall > 0 else 0.0
