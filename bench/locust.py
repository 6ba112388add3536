"""Run Locust headless against the stack and read back its CSV statistics."""

import csv
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parent.parent / "tests" / "load" / "locustfile.py"
SPAWN_RATE = 50
TOKENS_KEY = "locust:tokens"
STOP_TIMEOUT_S = 15
# A tenth of the load kit's default 1.00, so no credit line runs out during a run: a user
# served 17 times a second would spend a seeded 1000.00 line within 60 s, and the correct 409
# INSUFFICIENT_MERCHANT_CREDIT answers would count as failures. Every withdrawal still goes
# through the credit check; only the limit does not bind (like the raised rate limit).
WITHDRAW_AMOUNT = "0.10"


@dataclass(frozen=True)
class LocustStats:
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    failure_reasons: dict[str, int]


@dataclass(frozen=True)
class LocustRun:
    stats: LocustStats
    cpu_s: float  # Locust's own CPU: it shares the machine but is not server CPU
    returncode: int


def parse_stats_csv(text: str) -> LocustStats:
    """The "Aggregated" row of Locust's `<prefix>_stats.csv`."""
    rows = [row for row in csv.DictReader(text.splitlines()) if row["Name"] == "Aggregated"]
    if not rows:
        raise ValueError("no Aggregated row in Locust's stats CSV")
    row = rows[0]

    def number(column: str) -> float:
        value = row.get(column, "")
        return float(value) if value not in ("", "N/A") else 0.0

    return LocustStats(
        requests=int(number("Request Count")),
        failures=int(number("Failure Count")),
        rps=number("Requests/s"),
        p50_ms=number("50%"),
        p95_ms=number("95%"),
        p99_ms=number("99%"),
        max_ms=number("Max Response Time"),
        failure_reasons={},
    )


def parse_failures_csv(text: str) -> dict[str, int]:
    """Occurrences per error message in Locust's `<prefix>_failures.csv`."""
    reasons: dict[str, int] = {}
    for row in csv.DictReader(text.splitlines()):
        reasons[row["Error"]] = reasons.get(row["Error"], 0) + int(row["Occurrences"])
    return reasons


def run_locust(
    *,
    users: int,
    run_time_s: int,
    api_url: str,
    redis_url: str,
    csv_prefix: Path,
    html: Path,
    env: dict[str, str],
) -> LocustRun:
    """Locust headless with the README's settings; blocks until it has finished."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(SPAWN_RATE),
        "--run-time",
        f"{run_time_s}s",
        "--csv",
        str(csv_prefix),
        "--html",
        str(html),
        # Let each user finish the request it is in (REQ_TIMEOUT bounds it) instead of
        # abandoning it mid-flight: a cut connection is not a failure of the server.
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    locust_env = env | {
        "TARGET_HOST": api_url,
        "REDIS_URL": redis_url,
        "TOKENS_KEY": TOKENS_KEY,
        "WITHDRAW_AMOUNT": WITHDRAW_AMOUNT,
    }
    before = os.times()
    with csv_prefix.with_suffix(".log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            command, env=locust_env, stdout=log, stderr=subprocess.STDOUT
        )
        returncode = process.wait(timeout=run_time_s + STOP_TIMEOUT_S + 120)
    after = os.times()
    # Reaped children's CPU: Locust is the only child of ours that ends during this call.
    cpu_s = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    stats_csv = Path(f"{csv_prefix}_stats.csv")
    if not stats_csv.exists():
        raise RuntimeError(f"Locust wrote no statistics; see {csv_prefix.with_suffix('.log')}")
    failures_csv = Path(f"{csv_prefix}_failures.csv")
    reasons = parse_failures_csv(failures_csv.read_text()) if failures_csv.exists() else {}
    stats = replace(parse_stats_csv(stats_csv.read_text()), failure_reasons=reasons)
    return LocustRun(stats=stats, cpu_s=cpu_s, returncode=returncode)
