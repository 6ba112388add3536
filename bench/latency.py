"""Latency of one withdrawal at a time, end to end (`python -m bench.latency [N]`).

Sync mode: api -> PostgreSQL (transaction 1) -> settlement over HTTP -> PostgreSQL
(transaction 2), with synchronous_commit on. Prints p50/p95/p99 and checks the audit.
"""

import asyncio
import statistics
import sys
import time
import uuid

import httpx

from app.audit.service import run_audit
from app.auth.admins import create_admin
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from bench.stack import running_stack

ADMIN = ("bench-admin", "bench-admin-password")


async def _prepare(api: httpx.AsyncClient, database_url: str) -> str:
    engine = create_engine(Settings(ENVIRONMENT="test", DATABASE_URL=database_url), pool_size=1)
    async with create_sessionmaker(engine)() as session, session.begin():
        await create_admin(session, username=ADMIN[0], password=ADMIN[1])
    await engine.dispose()
    token = lambda r: {"Authorization": f"Bearer {r.json()['access']}"}  # noqa: E731
    admin = token(
        await api.post(
            "/api/v1/auth/token", json=dict(zip(("username", "password"), ADMIN, strict=True))
        )
    )
    await api.post("/api/v1/admin/pool/topup", json={"amount": "1000000.00"}, headers=admin)
    merchant = await api.post(
        "/api/v1/auth/register",
        json={
            "username": "bench-merchant",
            "password": "bench-password",
            "requested_credit": "100000.00",
            "bank_account": "DE89370400440532013000",
        },
    )
    await api.post(
        "/api/v1/admin/approve",
        headers=admin,
        json={"merchant_id": merchant.json()["merchant_id"], "credit_limit": "100000.00"},
    )
    login = await api.post(
        "/api/v1/auth/token", json={"username": "bench-merchant", "password": "bench-password"}
    )
    return str(login.json()["access"])


async def _measure(api_url: str, database_url: str, count: int) -> list[float]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        token = await _prepare(api, database_url)
        headers = {"Authorization": f"Bearer {token}"}
        timings = []
        for i in range(count + 20):
            started = time.perf_counter()
            response = await api.post(
                "/api/v1/withdrawals",
                json={"amount": "0.01"},
                headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            if i >= 20:  # the first requests warm connections and caches
                timings.append(elapsed * 1000)
        return timings


async def _audit(database_url: str) -> bool:
    engine = create_engine(Settings(ENVIRONMENT="test", DATABASE_URL=database_url), pool_size=1)
    async with create_sessionmaker(engine)() as session:
        report = await run_audit(session)
    await engine.dispose()
    print(report.render())
    return report.ok


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    # One merchant withdraws back to back: lift its rate limit, everything else stays on.
    with running_stack(extra_env={"RL_MAX_REQUESTS": "1000000"}) as stack:
        timings = asyncio.run(_measure(stack.api_url, stack.env["DATABASE_URL"], count))
        ok = asyncio.run(_audit(stack.env["DATABASE_URL"]))
    q = statistics.quantiles(timings, n=100)
    print(
        f"sequential sync withdrawals: n={len(timings)} p50={q[49]:.2f} ms "
        f"p95={q[94]:.2f} ms p99={q[98]:.2f} ms mean={statistics.mean(timings):.2f} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
