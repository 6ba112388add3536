"""Result summarising of `make bench`: rates from the database, Locust and pgbench output."""

import json
import re

import pytest

from bench.locust import parse_failures_csv, parse_stats_csv
from bench.pgbench import SCRIPT, parse_output
from bench.stack import error_kinds
from bench.summary import (
    WithdrawalTimes,
    cpu_per_withdrawal,
    markdown_table,
    percentile,
    summarise_withdrawals,
    yardstick_ratio,
)

STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,POST /api/v1/withdrawals,1200,3,110,130.5,8.1,900.2,180.0,20.1,0.05,\
110,130,150,160,200,260,400,520,880,900,900
,Aggregated,1200,3,110,130.5,8.1,900.2,180.0,20.1,0.05,\
110,130,150,160,200,260,400,520,880,900,900
"""

PGBENCH_OUT = """\
transaction type: /tmp/reserve-x.sql
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 17280
number of failed transactions: 0 (0.000%)
latency average = 18.512 ms
initial connection time = 25.118 ms
tps = 864.310245 (without initial connection time)
"""


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) == 0


def test_sync_rates_count_completions_within_the_traffic_window() -> None:
    # 11 withdrawals created 1 s apart, each done 0.2 s later; the last completes after the
    # window (t=10) closes, so 10 completions in 10 s.
    times = [WithdrawalTimes("SUCCESS", t, t + 0.2) for t in range(11)]
    summary = summarise_withdrawals(times, ramp_s=0)
    assert summary["accepted_per_s"] == 1.1
    assert summary["completed_per_s"] == 1.0
    assert summary["to_success_p50_ms"] == pytest.approx(200, abs=0.1)
    assert summary["statuses"] == {"SUCCESS": 11}


def test_async_backlog_shows_as_catch_up_not_as_completions_under_load() -> None:
    # 20 accepted during 0..9.5 s; the worker finishes one per second until t=20.
    times = [WithdrawalTimes("SUCCESS", i * 0.5, i + 1.0) for i in range(20)]
    summary = summarise_withdrawals(times, ramp_s=0)
    assert summary["accepted_per_s"] == pytest.approx(20 / 9.5, abs=0.1)
    assert summary["completed_per_s"] == pytest.approx(9 / 9.5, abs=0.1)
    assert summary["catch_up_s"] == 10.5
    assert summary["completed_overall_per_s"] == 1.0


def test_steady_rate_ignores_the_spawn_ramp_and_failures_are_not_completions() -> None:
    times = [WithdrawalTimes("SUCCESS", t / 10, t / 10) for t in range(0, 101)]
    times += [WithdrawalTimes("FAILED", 5.0, 5.0)]
    summary = summarise_withdrawals(times, ramp_s=5)
    assert summary["completed"] == 101
    assert summary["completed_per_s_steady"] == pytest.approx(10.2, abs=0.1)
    assert summary["statuses"] == {"SUCCESS": 101, "FAILED": 1}


def test_cpu_per_withdrawal_sums_every_server_process() -> None:
    cpu = {"api": 2.0, "settlement": 1.0, "worker": 0.5, "postgres": 1.0, "redis": 0.5}
    per = cpu_per_withdrawal(cpu, completed=1000)
    assert per["total"] == 5.0
    assert per["api"] == 2.0
    assert cpu_per_withdrawal(cpu, completed=0) == {"total": 0.0}


def test_locust_csv_gives_the_aggregated_row_and_failure_reasons() -> None:
    stats = parse_stats_csv(STATS_CSV)
    assert (stats.requests, stats.failures) == (1200, 3)
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (110, 260, 520)
    assert stats.rps == 20.1
    failures = "Method,Name,Error,Occurrences\nPOST,x,409 INSUFFICIENT_POOL,2\nPOST,x,0 None,1\n"
    assert parse_failures_csv(failures) == {"409 INSUFFICIENT_POOL": 2, "0 None": 1}


def test_pgbench_summary_is_parsed() -> None:
    result = parse_output(PGBENCH_OUT, clients=16, duration_s=20)
    assert result.tps == pytest.approx(864.31)
    assert (result.transactions, result.failed, result.latency_ms) == (17280, 0, 18.512)


def test_pgbench_script_is_transaction_1_in_one_transaction_with_the_pool_last() -> None:
    # A statement ends with ";" or with \gset (which keeps its answer for the next ones).
    parts = re.split(r";|\\gset", SCRIPT.split("\n", 1)[1])
    statements = [" ".join(part.split()) for part in parts if part.strip()]
    kinds = [statement[:24] for statement in statements]
    assert kinds == [
        "BEGIN",
        "INSERT INTO keys (mercha",
        "SELECT utilized, credit_",
        "UPDATE lines SET utilize",
        "INSERT INTO withdrawals ",
        "INSERT INTO ledger (tx_i",
        "INSERT INTO ledger (tx_i",
        "UPDATE pool SET availabl",
        "COMMIT",
    ]
    assert statements[2].endswith("FOR UPDATE")
    assert "'POOL'" in statements[5] and "'IN_FLIGHT'" in statements[6]


def test_yardstick_ratio_is_completed_per_s_over_each_yardstick() -> None:
    sticks = {"pgbench_tps": 2000.0, "fastapi_rps": 4000.0}
    assert yardstick_ratio(700.0, sticks) == {"pgbench": 0.35, "fastapi": 0.175}
    # A yardstick that was not measured gives no ratio rather than a division by nothing.
    assert yardstick_ratio(700.0, {"pgbench_tps": None, "fastapi_rps": 4000.0}) == {
        "fastapi": 0.175
    }


def test_table_has_one_row_per_run() -> None:
    run = {
        "mode": "async",
        "users": 50,
        "db": {
            "completed_per_s": 10.0,
            "to_success_p50_ms": 12.0,
            "to_success_p99_ms": 80.0,
            "catch_up_s": 3.4,
        },
        "locust": {"rps": 11.0, "p50_ms": 5, "p95_ms": 9, "p99_ms": 20, "failures": 0},
        "cpu_ms_per_withdrawal": {"total": 4.25, "worker": 1.5},
        "api_rss_peak_mb": 210.0,
        "audit_ok": True,
    }
    header, _, row = markdown_table([run]).splitlines()
    assert "| async | 50 | 10 |" in row
    assert "clean" in row
    # Async: 202 -> SUCCESS, seconds to finish after traffic, total and worker CPU per payout.
    assert "202->SUCCESS p50/p99 ms | done s after traffic | CPU ms/wd | worker CPU" in header
    assert "| 12 / 80 | 3.4 | 4.25 | 1.50 |" in row
    # A run before the yardsticks existed shows dashes, not an error.
    assert "| 1.50 | - | - | - |" in row


def test_sync_runs_show_no_async_figures() -> None:
    run = {
        "mode": "sync",
        "users": 500,
        "db": {"completed_per_s": 300.0, "catch_up_s": 0.2},
        "locust": {"rps": 300.0, "p50_ms": 50, "p95_ms": 90, "p99_ms": 200, "failures": 0},
        "cpu_ms_per_withdrawal": {"total": 6.0, "worker": 0.01},
        "api_rss_peak_mb": 210.0,
        "audit_ok": True,
    }
    row = markdown_table([run]).splitlines()[2]
    assert "| - | - | 6.00 | - |" in row


def test_table_shows_yardstick_ratios_and_batch_sizes() -> None:
    run = {
        "mode": "sync",
        "users": 500,
        "db": {"completed_per_s": 700.0},
        "locust": {"rps": 700.0, "p50_ms": 500, "p95_ms": 900, "p99_ms": 1200, "failures": 0},
        "cpu_ms_per_withdrawal": {"total": 3.0},
        "api_rss_peak_mb": 250.0,
        "audit_ok": True,
        "yardstick_ratio": {"pgbench": 0.351, "fastapi": 0.175},
        "batch_sizes": {
            "reserve": {"mean": 12.5, "p50": 11.0, "p95": 30.0},
            "finish": {"mean": 9.0, "p50": 8.0, "p95": 21.0},
        },
    }
    header, _, row = markdown_table([run]).splitlines()
    assert "/ pgbench | / FastAPI | batch size mean/p50/p95" in header
    assert "| 0.35 | 0.17 | finish 9.0/8/21; reserve 12.5/11/30 |" in row


def test_app_log_errors_are_grouped_by_message_and_exception() -> None:
    exc = (
        "Traceback (most recent call last):\n  File x\nTimeoutError: pool exhausted\n"
        "(Background on this error at: https://sqlalche.me/e/20/dbapi)"
    )
    json_line = json.dumps({"level": "ERROR", "msg": "unhandled error", "exc": exc})
    lines = [json_line, json_line, "ERROR:    Exception in ASGI application"]
    assert error_kinds(lines) == {
        "unhandled error: TimeoutError: pool exhausted": 2,
        "ERROR:    Exception in ASGI application": 1,
    }
