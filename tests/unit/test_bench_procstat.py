"""The /proc arithmetic behind `make bench`'s server CPU and memory figures."""

import os

from bench.procstat import (
    ProcStat,
    all_stats,
    parse_machine_busy,
    parse_stat,
    parse_status_kb,
    tree,
    tree_ticks,
)

# A real line's shape (proc(5)): utime=14, stime=15, cutime=16, cstime=17 (1-based).
STAT = "4242 (postgres: w (x) y) S 4200 4242 4242 0 -1 4194560 10 0 0 0 150 30 7 3 20 0 1 0 99"


def _stat(pid: int, ppid: int, own: int, reaped: int = 0) -> ProcStat:
    return ProcStat(pid=pid, ppid=ppid, utime=own, stime=0, cutime=reaped, cstime=0)


def test_stat_fields_are_counted_from_the_last_parenthesis_of_the_command_name() -> None:
    stat = parse_stat(STAT)
    assert (stat.pid, stat.ppid) == (4242, 4200)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (150, 30, 7, 3)
    assert stat.ticks == 190


def test_a_tree_is_its_root_and_every_live_descendant_and_nothing_else() -> None:
    stats = {s.pid: s for s in [_stat(1, 0, 5), _stat(10, 1, 1), _stat(11, 10, 2), _stat(20, 1, 3)]}
    assert {s.pid for s in tree(10, stats)} == {10, 11}
    assert tree(99, stats) == []


def test_tree_cpu_includes_children_that_exited_and_were_reaped() -> None:
    before = {s.pid: s for s in [_stat(100, 1, 50), _stat(101, 100, 20)]}
    # Backend 101 exited (its 25 ticks now sit in the postmaster's cutime); 102 is new.
    after = {s.pid: s for s in [_stat(100, 1, 60, reaped=25), _stat(102, 100, 4)]}
    assert tree_ticks(100, after) - tree_ticks(100, before) == (60 - 50) + (25 - 20) + 4


def test_status_memory_fields_read_in_kib_and_zero_when_absent() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert parse_status_kb(text, "VmRSS") == 102400
    assert parse_status_kb(text, "VmHWM") == 204800
    assert parse_status_kb("Name:\tkthreadd\n", "VmRSS") == 0


def test_machine_busy_time_leaves_out_idle_iowait_and_steal() -> None:
    text = "cpu  100 5 30 9000 40 2 3 50 0 0\ncpu0 50 2 15 4500 20 1 1 25 0 0\n"
    assert parse_machine_busy(text) == 100 + 5 + 30 + 2 + 3


def test_this_process_is_found_in_the_live_process_table() -> None:
    assert all_stats()[os.getpid()].ppid == os.getppid()
