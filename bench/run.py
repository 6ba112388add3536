"""`make bench`: the whole product under Locust, sync and async, at 500 and 50 users.

For each run: fresh seed (1000 merchants) and tokens, Locust headless for 60 s, then (async)
wait for the worker to finish every accepted withdrawal, read the database, the /proc CPU of
every server process and the api's memory, and run the audit, which must be clean. At the
end, pgbench measures PostgreSQL's ceiling for the reservation transaction alone. Results go
to bench/results/<timestamp>.json (and latest.json) with Locust's HTML reports.
"""

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dbstats, pgbench
from bench.locust import SPAWN_RATE, TOKENS_KEY, run_locust
from bench.procstat import CpuWindow, RssSampler, tree_memory_kb
from bench.stack import (
    BenchStack,
    Servers,
    app_env,
    error_kinds,
    running_apps,
    running_servers,
)
from bench.summary import cpu_per_withdrawal, markdown_table, summarise_withdrawals

RESULTS = Path(__file__).resolve().parent / "results"
MERCHANTS = 1000
RUN_TIME_S = int(os.environ.get("BENCH_RUN_TIME_S", "60"))
# Narrower runs while iterating, e.g. BENCH_MODES=sync BENCH_USERS=500 BENCH_PGBENCH=0.
MODES = tuple(os.environ.get("BENCH_MODES", "sync,async").split(","))
USERS = tuple(int(u) for u in os.environ.get("BENCH_USERS", "500,50").split(","))
WITH_PGBENCH = os.environ.get("BENCH_PGBENCH", "1") == "1"
DRAIN_TIMEOUT_S = 180
PGBENCH_S = 20
# Longer than REQUEST_LOG_FLUSH_INTERVAL_S (1 s by default).
REQUEST_LOG_FLUSH_S = 2.0
# Other processes using more than this share of the machine make a run's figures suspect.
CONTENDED_SHARE = 0.10
# Production-like, with every safeguard on; only the rate limit is raised so it cannot bind.
# The worker shares the 2 cores with the api, so it runs below the api's CPU priority: intake
# first, queued payouts (durable in PostgreSQL) drain behind it, as on any shared host.
APP_ENV = {"RL_MAX_REQUESTS": "1000000", "WORKER_NICENESS": "10"}


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def app_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m app ...` as an operator would run it."""
    return subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def seed(env: dict[str, str]) -> None:
    """Fresh merchants m1..m1000 (earlier money records cleared) and their tokens in Redis."""
    merchants = str(MERCHANTS)
    # The load-test kit refuses production mode; the secrets (so the tokens) stay the apps'.
    env = env | {"ENVIRONMENT": "test"}
    for args in (
        ["seed", "--merchants", merchants, "--credit", "1000.00", "--password", "p", "--reset"],
        ["tokens", "--count", merchants, "--redis-key", TOKENS_KEY],
    ):
        done = app_command(env, *args)
        if done.returncode != 0:
            raise RuntimeError(f"python -m app {args[0]} failed:\n{done.stdout}{done.stderr}")


def audit(env: dict[str, str]) -> bool:
    done = app_command(env, "audit")
    if done.returncode != 0:
        print(done.stdout + done.stderr, flush=True)
    return done.returncode == 0


def measure(
    stack: BenchStack, servers: Servers, *, mode: str, users: int, stamp: str
) -> dict[str, Any]:
    seed(stack.env)
    name = f"{stamp}-{mode}-{users}"
    _log(f"{mode} mode, {users} users, {RUN_TIME_S} s")
    log_offsets = stack.log_offsets()
    with (
        CpuWindow(stack.pids | servers.pids) as cpu,
        RssSampler(stack.pids["api"]) as rss,
        dbstats.ActivitySampler(servers.database_url) as activity,
    ):
        locust = run_locust(
            users=users,
            run_time_s=RUN_TIME_S,
            api_url=stack.api_url,
            redis_url=servers.redis_url,
            csv_prefix=servers.root / name,
            html=RESULTS / f"{name}.html",
            env=stack.env,
        )
        # Async: the worker's catch-up is part of the cost of the run.
        catch_up = dbstats.wait_until_drained(
            servers.database_url, timeout_s=DRAIN_TIMEOUT_S if mode == "async" else 0
        )
    cpu_window_end = time.time()
    # Sync withdrawals still open now had an unknown settlement outcome and wait for the
    # reconciler; the next run's reset must not race it, so wait (outside the CPU window).
    drain = dbstats.wait_until_drained(servers.database_url, timeout_s=DRAIN_TIMEOUT_S)
    time.sleep(REQUEST_LOG_FLUSH_S)  # the request log's last batch, before counting its rows
    times = dbstats.withdrawal_times(servers.database_url)
    db = summarise_withdrawals(times, ramp_s=users / SPAWN_RATE)
    completed_in_window = sum(
        1 for t in times if t.status == "SUCCESS" and t.updated <= cpu_window_end
    )
    other_cpu_s = cpu.machine_busy_s - sum(cpu.cpu_s.values()) - locust.cpu_s - cpu.own_s
    errors = stack.errors_since(log_offsets)
    return {
        "mode": mode,
        "users": users,
        "run_time_s": RUN_TIME_S,
        "db": db,
        "locust": locust.stats.__dict__,
        "server_cpu_s": {k: round(v, 2) for k, v in cpu.cpu_s.items()},
        "cpu_ms_per_withdrawal": cpu_per_withdrawal(cpu.cpu_s, completed_in_window),
        "locust_cpu_s": round(locust.cpu_s, 1),
        "harness_cpu_s": round(cpu.own_s, 1),
        # Whatever else ran on the machine meanwhile (other jobs, the kernel's own threads):
        # if large, the rates and latencies of this run are not the product's alone.
        "other_cpu_s": round(other_cpu_s, 1),
        "contended": other_cpu_s > CONTENDED_SHARE * cpu.wall_s * (os.cpu_count() or 1),
        "api_rss_peak_mb": round(rss.peak_kb / 1024, 1),
        "api_process_hwm_mb": round(max(tree_memory_kb(stack.pids["api"], "VmHWM")) / 1024, 1),
        "pg_sessions_by_wait": activity.averages(),
        "request_log_rows": dbstats.request_log_rows(servers.database_url),
        "open_after_load": catch_up.open_at_start,
        "catch_up_wait_s": catch_up.waited_s,
        "reconciler_wait_s": drain.waited_s,
        "drained": drain.drained,
        "still_open": drain.still_open,
        "server_errors": {app: len(lines) for app, lines in errors.items()},
        "server_error_kinds": {app: error_kinds(lines) for app, lines in errors.items()},
        "audit_ok": audit(stack.env),
        "html_report": f"{name}.html",
    }


def ceiling(servers: Servers) -> dict[str, Any]:
    """pgbench on a fresh seed, with the apps stopped; the audit checks the script's writes."""
    if not pgbench.available():
        return {"available": False}
    env = app_env(servers)
    seed(env)
    _log(f"pgbench: reservation transaction, {pgbench.CLIENTS} clients, {PGBENCH_S} s")
    result = pgbench.run_reserve(
        port=servers.postgres.port,
        database=servers.postgres.database,
        merchant_ids=dbstats.merchant_id_range(servers.database_url),
        duration_s=PGBENCH_S,
    )
    return {"available": True, **result.__dict__, "audit_ok": audit(env)}


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )

    def git(*args: str) -> str:
        command = ["git", *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.strip()

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        # The benchmarked code is the commit plus any uncommitted changes.
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workers = os.cpu_count() or 1
    runs = []
    with running_servers() as servers:
        for mode in MODES:
            env = APP_ENV | {"ASYNC_SETTLEMENT": "1" if mode == "async" else "0"}
            with running_apps(servers, api_workers=workers, worker=True, extra_env=env) as stack:
                for users in USERS:
                    runs.append(measure(stack, servers, mode=mode, users=users, stamp=stamp))
                    _log(markdown_table(runs[-1:]).splitlines()[-1])
        pg = ceiling(servers) if WITH_PGBENCH else {"available": False}
    if pg.get("available"):
        for run in runs:
            run["pgbench_ratio"] = round(run["db"]["completed_per_s"] / pg["tps"], 2)
    result = {"timestamp": stamp, "machine": machine(), "api_workers": workers}
    result |= {"runs": runs, "pgbench": pg}
    text = json.dumps(result, indent=2) + "\n"
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(render(result), flush=True)
    clean = all(r["audit_ok"] and r["drained"] for r in runs) and pg.get("audit_ok", True)
    return 0 if clean else 1


def render(result: dict[str, Any]) -> str:
    m, pg = result["machine"], result["pgbench"]
    lines = [
        f"Machine: {m['nproc']} cores, {m['cpu_model']}; api --workers {result['api_workers']}",
        markdown_table(result["runs"]),
    ]
    if pg.get("available"):
        ratios = ", ".join(
            f"{r['mode']}/{r['users']}: {r.get('pgbench_ratio', 0):.2f}" for r in result["runs"]
        )
        lines.append(
            f"pgbench reservation ceiling: {pg['tps']:.0f} tps ({pg['clients']} clients, "
            f"{pg['duration_s']} s, {pg['latency_ms']:.1f} ms avg, {pg['failed']} failed, "
            f"audit {'clean' if pg['audit_ok'] else 'FAILED'}); api completed/s / pgbench tps: "
            f"{ratios}"
        )
    for run in result["runs"]:
        label = f"{run['mode']}/{run['users']}"
        if run["contended"]:
            lines.append(
                f"WARNING {label}: other processes used {run['other_cpu_s']} CPU-s during the "
                "run; its rates and latencies are not the product's alone"
            )
        if run["server_errors"]:
            lines.append(f"WARNING {label}: error lines in the app logs {run['server_errors']}")
    lines.append(f"Results: bench/results/{result['timestamp']}.json")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
