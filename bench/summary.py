"""Pure arithmetic of a benchmark run: rates, percentiles, CPU per withdrawal, yardstick
ratios, the table."""

import math
from dataclasses import dataclass
from typing import Any

SERVER_PROCESSES = ("api", "settlement", "worker", "postgres", "redis")


@dataclass(frozen=True)
class WithdrawalTimes:
    status: str
    created: float  # epoch seconds: start of transaction 1
    updated: float  # epoch seconds: the last change (SUCCESS: transaction 2)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise_withdrawals(times: list[WithdrawalTimes], *, ramp_s: float) -> dict[str, Any]:
    """Rates as the database saw them, over the traffic window: first to last withdrawal
    created (transaction 1 began).

    accepted/s: withdrawals created in the window / its length.
    completed/s: withdrawals that reached SUCCESS within the window / its length, i.e. the
    throughput while under load (async: what the worker kept up with; what it finished
    afterwards shows as catch_up_s and in completed_overall_per_s).
    steady/s: completed/s counted only after every user had spawned (`ramp_s`).
    """
    if not times:
        return {"accepted": 0, "completed": 0, "accepted_per_s": 0.0, "completed_per_s": 0.0}
    success = [t for t in times if t.status == "SUCCESS"]
    first = min(t.created for t in times)
    last = max(t.created for t in times)
    last_done = max((t.updated for t in success), default=last)
    steady_from = min(first + ramp_s, last)
    settle_ms = [(t.updated - t.created) * 1000 for t in success]
    statuses: dict[str, int] = {}
    for t in times:
        statuses[t.status] = statuses.get(t.status, 0) + 1

    def done_between(start: float, end: float) -> int:
        return sum(1 for t in success if start <= t.updated <= end)

    return {
        "accepted": len(times),
        "completed": len(success),
        "statuses": statuses,
        "accepted_per_s": _rate(len(times), last - first),
        "completed_per_s": _rate(done_between(first, last), last - first),
        "completed_per_s_steady": _rate(done_between(steady_from, last), last - steady_from),
        "completed_overall_per_s": _rate(len(success), last_done - first),
        "traffic_s": round(last - first, 1),
        "catch_up_s": round(max(0.0, last_done - last), 1),
        "to_success_p50_ms": round(percentile(settle_ms, 0.50), 1),
        "to_success_p99_ms": round(percentile(settle_ms, 0.99), 1),
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def cpu_per_withdrawal(cpu_s: dict[str, float], completed: int) -> dict[str, float]:
    """Server CPU milliseconds per completed withdrawal: the total and each process tree."""
    if completed == 0:
        return {"total": 0.0}
    per = {name: round(cpu_s.get(name, 0.0) * 1000 / completed, 2) for name in SERVER_PROCESSES}
    return {"total": round(sum(per.values()), 2), **per}


def yardstick_ratio(
    completed_per_s: float, yardsticks: dict[str, float | None]
) -> dict[str, float]:
    """completed/s over each yardstick measured in the same run (ARCHITECTURE section 9)."""
    ratios = {}
    for name, key in (("pgbench", "pgbench_tps"), ("fastapi", "fastapi_rps")):
        value = yardsticks.get(key)
        if value:
            ratios[name] = round(completed_per_s / value, 3)
    return ratios


def _ratio(run: dict[str, Any], name: str) -> str:
    value = run.get("yardstick_ratio", {}).get(name)
    return "-" if value is None else f"{value:.2f}"


def _batch_sizes(run: dict[str, Any]) -> str:
    sizes = run.get("batch_sizes") or {}
    return (
        "; ".join(
            f"{name} {s['mean']:.1f}/{s['p50']:.0f}/{s['p95']:.0f}"
            for name, s in sorted(sizes.items())
        )
        or "-"
    )


COLUMNS = [
    ("mode", "{mode}"),
    ("users", "{users}"),
    ("completed/s", "{completed_per_s:.0f}"),
    ("steady/s", "{completed_per_s_steady:.0f}"),
    ("accepted/s", "{accepted_per_s:.0f}"),
    ("Locust RPS", "{rps:.0f}"),
    ("p50 ms", "{p50_ms:.0f}"),
    ("p95 ms", "{p95_ms:.0f}"),
    ("p99 ms", "{p99_ms:.0f}"),
    ("failures", "{failures}"),
    ("202->SUCCESS p50/p99 ms", "{to_success}"),
    ("done s after traffic", "{after_traffic}"),
    ("CPU ms/wd", "{cpu_ms:.2f}"),
    ("worker CPU ms/payout", "{worker_cpu_ms}"),
    ("/ pgbench", "{pgbench_ratio}"),
    ("/ FastAPI", "{fastapi_ratio}"),
    ("batch size mean/p50/p95", "{batch_sizes}"),
    ("api peak RSS MB", "{rss_mb:.0f}"),
    ("audit", "{audit}"),
]


def table_row(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run (as stored in the JSON) that the table shows."""
    db, locust = run["db"], run["locust"]
    asynchronous = run["mode"] == "async"
    return {
        "mode": run["mode"],
        "users": run["users"],
        "completed_per_s": db.get("completed_per_s", 0.0),
        "completed_per_s_steady": db.get("completed_per_s_steady", 0.0),
        "accepted_per_s": db.get("accepted_per_s", 0.0),
        "rps": locust["rps"],
        "p50_ms": locust["p50_ms"],
        "p95_ms": locust["p95_ms"],
        "p99_ms": locust["p99_ms"],
        "failures": locust["failures"],
        "to_success": (
            f"{db.get('to_success_p50_ms', 0):.0f} / {db.get('to_success_p99_ms', 0):.0f}"
            if asynchronous
            else "-"
        ),
        # Async only: how long the worker took to finish the backlog once traffic stopped,
        # and its CPU per payout (the worker's share of CPU ms/wd).
        "after_traffic": f"{db.get('catch_up_s', 0):.1f}" if asynchronous else "-",
        "cpu_ms": run["cpu_ms_per_withdrawal"]["total"],
        "worker_cpu_ms": (
            f"{run['cpu_ms_per_withdrawal'].get('worker', 0):.2f}" if asynchronous else "-"
        ),
        "pgbench_ratio": _ratio(run, "pgbench"),
        "fastapi_ratio": _ratio(run, "fastapi"),
        "batch_sizes": _batch_sizes(run),
        "rss_mb": run["api_rss_peak_mb"],
        "audit": "clean" if run["audit_ok"] else "FAILED",
    }


def markdown_table(runs: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for run in runs:
        row = table_row(run)
        lines.append("| " + " | ".join(fmt.format(**row) for _, fmt in COLUMNS) + " |")
    return "\n".join(lines)
