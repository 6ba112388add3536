"""`make chaos`: the whole product under load while its processes and servers fail.

The production layout of `make bench` (bench/stack.py: durable PostgreSQL, Redis, the api under
uvicorn with 2 workers, settlement, the arq worker), 1000 seeded merchants, Locust at 200
users in sync mode and then async mode, 90 s each, with one fault of each kind
(bench/chaos_faults.py) on a schedule printed first (CHAOS_SEED shuffles it reproducibly).
Locust records every answer a merchant got (tests/load/locustfile.py, ANSWERS_DIR). After each
run the harness waits for the reconciler until nothing is open (at most 120 s), then checks
the answers against the final books (bench/chaos_report.py) and runs `python -m app audit`.
It writes bench/results/chaos-<timestamp>.json, prints a table, and exits 1 if any check
fails. CHAOS_SHORT=1 is the version `make test` runs (tests/load/test_chaos.py): fewer
merchants and users, 16 s of load per mode, the same faults. All traffic stays on 127.0.0.1;
like every fault-injection tool it refuses to run outside ENVIRONMENT=dev/test.
"""

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import chaos_report, dbstats
from bench.chaos_faults import Fault, FaultRunner, Injector, schedule
from bench.chaos_hostile import Target
from bench.locust import TOKENS_KEY, run_locust
from bench.run import APP_ENV, audit, machine, seed
from bench.stack import BenchStack, Servers, error_kinds, running_apps, running_servers

RESULTS = Path(os.environ.get("CHAOS_RESULTS_DIR") or Path(__file__).parent / "results")
API_WORKERS = 2  # one is killed; uvicorn's supervisor must replace it
DRAIN_TIMEOUT_S = 120
# The reconciler finishes unknown outcomes soon after the faults, not a minute later (the
# defaults): it waits just past the hop's timeout (SETTLEMENT_TIMEOUT_S, 5 s) and takes all
# of them per round; the worker's sweeper hands them to the worker every 2 s. A lease left
# by a killed settlement expires after 8 s instead of 30 s. The worker is not niced as in
# make bench: on a shared machine a niced worker got so little CPU that the async queue was
# not paid within DRAIN_TIMEOUT_S (chaos-20261201T231405Z: 1287 still open).
CHAOS_ENV = {
    "WORKER_NICENESS": "0",
    "RECONCILE_AFTER_S": "6",
    "RECONCILE_EVERY_S": "3",
    "RECONCILE_BATCH": "2000",
    "SWEEP_EVERY_S": "2",
    "PAYOUT_LEASE_S": "8",
}


@dataclass(frozen=True)
class Plan:
    merchants: int
    users: int
    run_time_s: int
    # Each user withdraws at most every this many seconds (0: back to back).
    sync_pace_s: float
    async_pace_s: float
    modes: tuple[str, ...] = ("sync", "async")


FULL = Plan(merchants=1000, users=200, run_time_s=90, sync_pace_s=0, async_pace_s=0)
# Paced in both modes: the reconciler's catch-up, not the load, sets how long the test takes.
SHORT = Plan(merchants=40, users=20, run_time_s=16, sync_pace_s=0.5, async_pace_s=0.5)


_STARTED = time.monotonic()


def _log(message: str) -> None:
    print(f"[chaos {time.monotonic() - _STARTED:6.1f} s] {message}", flush=True)


def main() -> int:
    # Read as Settings would default it; not through Settings, which refuses production's
    # default secrets before we could say why we refuse.
    environment = os.environ.get("ENVIRONMENT", "production")
    if environment not in ("dev", "test"):
        print(
            f"refusing to run fault injection with ENVIRONMENT={environment}: "
            "set ENVIRONMENT=dev or test (make chaos does)",
            file=sys.stderr,
        )
        return 2
    plan = SHORT if os.environ.get("CHAOS_SHORT") == "1" else FULL
    seed_text = os.environ.get("CHAOS_SEED")
    faults = schedule(plan.run_time_s, int(seed_text) if seed_text else None)
    _log(f"{plan}; CHAOS_SEED={seed_text or '(unset: the fixed schedule)'}")
    for fault in faults:
        _log(f"  t+{fault.at_s:5.1f} s  {fault.kind}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    runs = []
    with running_servers() as servers:
        _log("PostgreSQL and Redis up")
        for mode in plan.modes:
            env = APP_ENV | CHAOS_ENV | {"ASYNC_SETTLEMENT": "1" if mode == "async" else "0"}
            with running_apps(
                servers, api_workers=API_WORKERS, worker=True, extra_env=env
            ) as stack:
                run = run_mode(stack, servers, plan=plan, mode=mode, faults=faults)
            runs.append(run)
            _log(chaos_report.markdown_table([run]).splitlines()[-1])
    result = {
        "timestamp": stamp,
        "machine": machine(),
        "plan": plan.__dict__,
        "chaos_seed": seed_text,
        "schedule": [fault.__dict__ for fault in faults],
        "runs": runs,
        "ok": all(all(run["checks"].values()) for run in runs),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"chaos-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(chaos_report.markdown_table(runs), flush=True)
    for run in runs:
        broken = [name for name, ok in run["checks"].items() if not ok]
        if broken:
            _log(f"BROKEN in {run['mode']} mode: {', '.join(broken)}")
    _log(f"results: {RESULTS / f'chaos-{stamp}.json'}")
    return 0 if result["ok"] else 1


def run_mode(
    stack: BenchStack, servers: Servers, *, plan: Plan, mode: str, faults: list[Fault]
) -> dict[str, Any]:
    _log(f"{mode} mode: apps up, seeding {plan.merchants} merchants")
    seed(stack.env, merchants_count=plan.merchants)
    with redis.Redis.from_url(servers.redis_url) as client:
        last_token = client.lindex(TOKENS_KEY, -1)  # a merchant no Locust user takes
    assert last_token is not None and plan.merchants > plan.users
    answers_dir = servers.root / f"answers-{mode}"
    answers_dir.mkdir()
    hostile = Target(
        stack.api_url,
        f"{stack.settlement_url}/api/settlement/withdraw",
        last_token.decode(),
        answers_dir / "hostile.jsonl",
    )
    pace = plan.async_pace_s if mode == "async" else plan.sync_pace_s
    log_offsets = stack.log_offsets()
    _log(f"{mode} mode: {plan.users} users for {plan.run_time_s} s, with the faults")
    with FaultRunner(faults, Injector(stack, servers, hostile)) as runner:
        locust = run_locust(
            users=plan.users,
            run_time_s=plan.run_time_s,
            api_url=stack.api_url,
            redis_url=servers.redis_url,
            csv_prefix=servers.root / f"chaos-{mode}",
            html=servers.root / f"chaos-{mode}.html",
            env=stack.env | {"ANSWERS_DIR": str(answers_dir), "USER_PACE_S": str(pace)},
        )
    drain = dbstats.wait_until_drained(servers.database_url, timeout_s=DRAIN_TIMEOUT_S)
    _log(f"{mode} mode: {drain.open_at_start} open after the load, waited {drain.waited_s} s")
    answers = chaos_report.read_answers(answers_dir)
    figures = chaos_report.summarise(answers, finals(servers), books(servers))
    hostile_result = next((f for f in runner.results if f["kind"] == "hostile_burst"), {})
    figures |= {
        "mode": mode,
        "locust": locust.stats.__dict__,
        "faults": runner.results,
        "hostile": {
            key: hostile_result.get(key, 0) for key in ("sent", "unanswered", "unexpected")
        },
        "reconciler_wait_s": drain.waited_s,
        "open_after_load": drain.open_at_start,
        "audit_ok": audit(stack.env),
        # Expected while faults are on (lost connections, a frozen hop); read them for surprises.
        "server_error_kinds": {
            app: error_kinds(lines) for app, lines in stack.errors_since(log_offsets).items()
        },
    }
    figures["checks"] = chaos_report.checks(figures)
    return figures


def finals(servers: Servers) -> list[chaos_report.Final]:
    rows = dbstats.fetch(
        servers.database_url, "SELECT id::text, idempotency_key, status FROM withdrawals"
    )
    return [chaos_report.Final(row[0], row[1], row[2]) for row in rows]


# Counts from the books. "Paid twice": one request (merchant, key) with more than one PAID bank
# transfer (the bank's book is keyed by withdrawal id, so two withdrawals for one request).
_BOOKS = """
SELECT
  (SELECT count(*) FROM withdrawals) AS accepted,
  (SELECT count(*) FROM withdrawals WHERE status IN ('SUCCESS', 'FAILED')) AS finished,
  (SELECT count(*) FROM withdrawals WHERE status = 'SUCCESS') AS succeeded,
  (SELECT count(*) FROM withdrawals WHERE status = 'FAILED') AS failed,
  (SELECT count(*) FROM withdrawals WHERE status IN ('QUEUED', 'PROCESSING')) AS still_open,
  (SELECT count(*) FROM (
      SELECT 1 FROM withdrawals AS w
      JOIN settlement_bank_transfers AS t ON t.reference = w.id AND t.status = 'PAID'
      GROUP BY w.merchant_id, w.idempotency_key HAVING count(*) > 1) AS twice) AS paid_twice,
  (SELECT count(*) FROM settlement_bank_transfers AS t
   WHERE t.status = 'PAID'
     AND NOT EXISTS (SELECT 1 FROM withdrawals AS w WHERE w.id = t.reference)
  ) AS paid_without_withdrawal,
  (SELECT count(*) FROM withdrawals AS w
   WHERE (w.status = 'FAILED' AND EXISTS (
            SELECT 1 FROM settlement_bank_transfers AS t
            WHERE t.reference = w.id AND t.status = 'PAID'))
      OR (EXISTS (SELECT 1 FROM ledger_entries AS e
                  WHERE e.withdrawal_id = w.id AND e.kind = 'RELEASE')
          AND EXISTS (SELECT 1 FROM ledger_entries AS e
                      WHERE e.withdrawal_id = w.id AND e.kind = 'SETTLE'))
  ) AS released_after_paid
"""


def books(servers: Servers) -> dict[str, int]:
    (row,) = dbstats.fetch(servers.database_url, _BOOKS)
    return {name: int(value) for name, value in dict(row).items()}


if __name__ == "__main__":
    sys.exit(main())
