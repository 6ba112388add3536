"""CPU time and memory of process trees, read from /proc (Linux only).

A tree's CPU is every live member's utime+stime plus its cutime+cstime: a child that exited
and was reaped (a PostgreSQL backend whose connection closed) is then counted in its parent,
so the delta between two snapshots misses nothing and counts nothing twice.
"""

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        """Own CPU plus that of reaped children, in clock ticks."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(line: str) -> ProcStat:
    """One /proc/<pid>/stat line. The command name sits in parentheses and may itself hold
    spaces or parentheses, so the fields are counted from the last ')'."""
    pid = int(line[: line.index("(")])
    rest = line[line.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state) of proc(5), so field n is rest[n - 3].
    return ProcStat(
        pid=pid,
        ppid=int(rest[1]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
    )


def parse_status_kb(text: str, field: str) -> int:
    """A `Field:   1234 kB` value of /proc/<pid>/status, 0 when absent (a kernel thread)."""
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # the process exited between listing and reading


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (line := _read(entry / "stat")) is not None:
            stats[int(entry.name)] = parse_stat(line)
    return stats


def tree(root: int, stats: dict[int, ProcStat]) -> list[ProcStat]:
    """`root` and all its live descendants (empty if root is gone)."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(stats[pid])
            todo.extend(children.get(pid, []))
    return found


def tree_ticks(root: int, stats: dict[int, ProcStat]) -> int:
    return sum(stat.ticks for stat in tree(root, stats))


def cpu_snapshot(roots: dict[str, int]) -> dict[str, int]:
    """CPU ticks so far of each named process tree."""
    stats = all_stats()
    return {name: tree_ticks(pid, stats) for name, pid in roots.items()}


def parse_machine_busy(text: str) -> int:
    """Clock ticks all CPUs spent running something, from /proc/stat's first line: user,
    nice, system, irq and softirq (guest time is inside user; idle, iowait and a
    hypervisor's steal are not work done here)."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(value) for value in text.splitlines()[0].split()[1:8]
    )
    return user + nice + system + irq + softirq


def machine_busy_ticks() -> int:
    return parse_machine_busy((PROC / "stat").read_text())


def cpu_seconds(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    return {name: (after[name] - before[name]) / CLOCK_TICKS for name in before}


def tree_memory_kb(root: int, field: str = "VmRSS") -> list[int]:
    """`field` of /proc/<pid>/status for each member of the tree."""
    values = []
    for stat in tree(root, all_stats()):
        if (text := _read(PROC / str(stat.pid) / "status")) is not None:
            values.append(parse_status_kb(text, field))
    return values


class RssSampler:
    """Samples the summed VmRSS of a process tree in a thread and keeps the peak."""

    def __init__(self, root: int, *, every_s: float = 0.5) -> None:
        self.root = root
        self.every_s = every_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(tree_memory_kb(self.root)))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, sum(tree_memory_kb(self.root)))


class CpuWindow:
    """CPU spent between entering and leaving: by each named process tree, by this process
    (the harness) and by the whole machine, with the wall time."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.cpu_s: dict[str, float] = {}
        self.machine_busy_s = self.own_s = self.wall_s = 0.0

    def __enter__(self) -> "CpuWindow":
        self._trees = cpu_snapshot(self.roots)
        self._busy, self._own, self._started = machine_busy_ticks(), _own_s(), time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cpu_s = cpu_seconds(self._trees, cpu_snapshot(self.roots))
        self.machine_busy_s = (machine_busy_ticks() - self._busy) / CLOCK_TICKS
        self.own_s = _own_s() - self._own
        self.wall_s = time.monotonic() - self._started


def _own_s() -> float:
    times = os.times()
    return times.user + times.system
