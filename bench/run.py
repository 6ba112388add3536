"""`make bench`: the whole product under Locust, sync and async, at 500 and 50 users.

For each run: fresh seed (1000 merchants) and tokens, Locust headless for 60 s, then (async)
wait for the worker to finish every accepted withdrawal, read the database, the /proc CPU of
every server process and the api's memory, each batcher's batch sizes, and run the audit,
which must be clean. At the end, the two yardsticks of ARCHITECTURE section 9 (bench/pgbench.py,
bench/trivial_app.py), to which every run's completed/s is reported as a ratio. Results go to
bench/results/<timestamp>.json (and latest.json) with Locust's HTML reports.
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

from bench import batchsizes, dbstats, pgbench
from bench.locust import SPAWN_RATE, TOKENS_KEY, run_locust
from bench.procstat import CpuWindow, RssSampler, tree_memory_kb
from bench.stack import (
    BenchStack,
    Servers,
    app_env,
    error_kinds,
    running_apps,
    running_servers,
    running_trivial_app,
)
from bench.summary import (
    cpu_per_withdrawal,
    markdown_table,
    summarise_withdrawals,
    yardstick_ratio,
)

RESULTS = Path(__file__).resolve().parent / "results"
MERCHANTS = 1000
RUN_TIME_S = int(os.environ.get("BENCH_RUN_TIME_S", "60"))
# Narrower runs while iterating, e.g. BENCH_MODES=sync BENCH_USERS=500 BENCH_YARDSTICK_S=5
# (BENCH_YARDSTICKS=0 skips the yardsticks, and with them the ratios).
MODES = tuple(os.environ.get("BENCH_MODES", "sync,async").split(","))
USERS = tuple(int(u) for u in os.environ.get("BENCH_USERS", "500,50").split(","))
WITH_YARDSTICKS = os.environ.get("BENCH_YARDSTICKS", "1") == "1"
_YARDSTICK_S = os.environ.get("BENCH_YARDSTICK_S")
# Yardstick (a) as ARCHITECTURE section 9 fixes it; (b) a short run of the product's Locust
# settings (long enough to be past the spawn ramp of 500 users at 50/s for most of it).
PGBENCH_S = int(_YARDSTICK_S or 20)
FASTAPI_S = int(_YARDSTICK_S or 30)
FASTAPI_USERS = 500
DRAIN_TIMEOUT_S = 180
# Longer than REQUEST_LOG_FLUSH_INTERVAL_S (1 s by default).
REQUEST_LOG_FLUSH_S = 2.0
# Other processes using more than this share of the machine make a run's figures suspect.
CONTENDED_SHARE = 0.10
# Production-like, with every safeguard on; only the rate limit is raised so it cannot bind.
# The worker runs at the api's CPU priority (WORKER_NICENESS stays an operator's option): a
# niced worker on these shared cores pays only what intake leaves idle, so async mode's backlog
# would measure the niceness, not the payout path (issue 16 item 4).
APP_ENV = {"RL_MAX_REQUESTS": "1000000", "WORKER_NICENESS": "0"}


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


def seed(env: dict[str, str], *, merchants_count: int = MERCHANTS) -> None:
    """Fresh merchants m1..mN (earlier money records cleared) and their tokens in Redis."""
    merchants = str(merchants_count)
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
    metrics_url = f"{stack.api_url}/metrics"
    batches_before = batchsizes.scrape(metrics_url)
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
    # Async: the worker's batches while it caught up count too (it shares the api's metrics).
    batch_sizes = batchsizes.batch_sizes(batches_before, batchsizes.scrape(metrics_url))
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
        "batch_sizes": batch_sizes,
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


def yardsticks(servers: Servers, *, workers: int, stamp: str) -> dict[str, Any]:
    """Both yardsticks, with the apps stopped: (b) under Locust, then (a) with pgbench."""
    env = app_env(servers)
    seed(env)  # the tokens Locust's users pick up; the trivial app ignores them
    _log(f"yardstick (b): trivial FastAPI POST, {FASTAPI_USERS} users, {FASTAPI_S} s")
    with running_trivial_app(servers, workers=workers) as url:
        name = f"{stamp}-yardstick-fastapi"
        locust = run_locust(
            users=FASTAPI_USERS,
            run_time_s=FASTAPI_S,
            api_url=url,
            redis_url=servers.redis_url,
            csv_prefix=servers.root / name,
            html=RESULTS / f"{name}.html",
            env=env,
        )
    found: dict[str, Any] = {"fastapi": {"users": FASTAPI_USERS, "run_time_s": FASTAPI_S}}
    found["fastapi"] |= locust.stats.__dict__
    if pgbench.available():
        _log(f"yardstick (a): fixed pgbench script, {pgbench.CLIENTS} clients, {PGBENCH_S} s")
        pgbench.setup(port=servers.postgres.port)
        found["pgbench"] = pgbench.run(port=servers.postgres.port, duration_s=PGBENCH_S).__dict__
    return found


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
        details = yardsticks(servers, workers=workers, stamp=stamp) if WITH_YARDSTICKS else {}
    sticks = {
        "pgbench_tps": details["pgbench"]["tps"] if "pgbench" in details else None,
        "fastapi_rps": details["fastapi"]["rps"] if "fastapi" in details else None,
    }
    for run in runs:
        run["yardstick_ratio"] = yardstick_ratio(run["db"]["completed_per_s"], sticks)
    result = {"timestamp": stamp, "machine": machine(), "api_workers": workers}
    result |= {"runs": runs, "yardsticks": sticks, "yardstick_runs": details}
    text = json.dumps(result, indent=2) + "\n"
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(render(result), flush=True)
    clean = all(r["audit_ok"] and r["drained"] for r in runs)
    return 0 if clean else 1


def render(result: dict[str, Any]) -> str:
    m, details = result["machine"], result["yardstick_runs"]
    lines = [
        f"Machine: {m['nproc']} cores, {m['cpu_model']}; api --workers {result['api_workers']}",
        markdown_table(result["runs"]),
    ]
    if "pgbench" in details:
        pg = details["pgbench"]
        lines.append(
            f"Yardstick (a), fixed pgbench script: {pg['tps']:.0f} tps ({pg['clients']} clients, "
            f"{pg['duration_s']} s, {pg['latency_ms']:.1f} ms avg, {pg['failed']} failed)"
        )
    if "fastapi" in details:
        fa = details["fastapi"]
        lines.append(
            f"Yardstick (b), trivial FastAPI POST: {fa['rps']:.0f} requests/s ({fa['users']} "
            f"users, {fa['run_time_s']} s, p50 {fa['p50_ms']:.0f} ms, {fa['failures']} failures)"
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
