"""SIGTERM in the middle of a burst of withdrawals, to the processes as the image starts them
(deploy/entrypoint.sh): in-flight work finishes, new connections are refused, nothing is left
half-done and the books balance.

Settlement sits behind a gate, so the burst is provably in flight when the signal lands."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.dev.embedded.process import free_port
from app.main import create_app
from app.models import ApiRequestLog, Withdrawal
from app.settlement.main import create_app as create_settlement_app
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.servers import serve
from tests.support.stack import settlement_settings

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
WAIT_S = 60
LIVENESS = ("python", "-m", "app", "worker-alive")


class Gate:
    """Holds every settlement payout request (single or batch) until opened."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.waiting = 0
        self.opened = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/settlement/withdraw"):
            self.waiting += 1
            await self.opened.wait()
        await self.app(scope, receive, send)


@pytest.fixture
async def gate(settings: Settings) -> AsyncIterator[tuple[Gate, str]]:
    gate = Gate(create_settlement_app(settlement_settings(settings)))
    async with serve(gate) as base_url:  # type: ignore[arg-type]
        yield gate, f"{base_url}/api/settlement/withdraw"
        gate.opened.set()


def image_env(settings: Settings, **env: str) -> dict[str, str]:
    """The container's environment, pointed at the test servers."""
    return (
        os.environ
        | {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "ENVIRONMENT": "test",
            "DATABASE_URL": str(settings.DATABASE_URL),
            "REDIS_URL": str(settings.REDIS_URL),
            "RL_MAX_REQUESTS": "0",
        }
        | env
    )


@contextmanager
def image_process(
    role: str, settings: Settings, log: Path, *args: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`creditpool ROLE` as in the container, against the test servers."""
    environment = image_env(settings, **env)
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["/bin/sh", str(ENTRYPOINT), role, *args],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def until(condition: Callable[[], Any], what: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(int(WAIT_S / 0.05)):
        if await condition() if asyncio.iscoroutinefunction(condition) else condition():
            return
        assert process.poll() is None, f"exited ({process.returncode}) while waiting for {what}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def exit_code(process: subprocess.Popen[bytes]) -> int:
    """Wait for the process without blocking the loop that serves settlement."""
    for _ in range(int(WAIT_S / 0.05)):
        if (code := process.poll()) is not None:
            return code
        await asyncio.sleep(0.05)
    raise AssertionError(f"{process.args} still runs {WAIT_S} s after SIGTERM")


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Withdrawal.status, func.count()).group_by(Withdrawal.status)
        )
        return {str(status): count for status, count in rows}


async def test_api_sigterm_finishes_in_flight_withdrawals_and_refuses_new_ones(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    gate: tuple[Gate, str],
    clean_db: None,
    redis: Redis,
    tmp_path: Path,
) -> None:
    held, settlement_url = gate
    port = free_port()
    env = {"SETTLEMENT_URL": settlement_url, "SETTLEMENT_TIMEOUT_S": str(WAIT_S)}
    args = ("--host", "127.0.0.1", "--port", str(port))
    with image_process("api", settings, tmp_path / "api.log", *args, **env) as api:
        base_url = f"http://127.0.0.1:{port}"
        # A connection per request: nothing rides on a kept-alive one the server closes.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_S, limits=no_keepalive) as c:

            async def ready() -> bool:
                try:
                    return (await c.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, "the api to be ready", api)
            admin = await admin_token(c, sessionmaker)
            await top_up(c, admin, "1000.00")
            tokens = [(await approved_merchant(c, admin))[1] for _ in range(3)]
            burst = [
                asyncio.create_task(withdraw(c, tokens[i % 3], "5.00", key=f"burst-{i}"))
                for i in range(12)
            ]

            async def in_flight() -> bool:
                # Every withdrawal reserved and awaiting its outcome: the api's settle batcher
                # sends one batch at a time, so the gate holds the first and the rest wait.
                reserved = await statuses(sessionmaker) == {"PROCESSING": len(burst)}
                return reserved and held.waiting >= 1

            await until(in_flight, "the burst to reach the settlement hop", api)

            api.send_signal(signal.SIGTERM)
            await until(lambda: refuses_connections(port), "the api to stop accepting", api)
            for i in range(3):
                with pytest.raises(httpx.ConnectError):
                    await withdraw(c, tokens[i], "5.00", key=f"late-{i}")
            held.opened.set()
            answers = await asyncio.gather(*burst)
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert await exit_code(api) in (0, -signal.SIGTERM)

    assert [a.status_code for a in answers] == [200] * len(burst), [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"SUCCESS"}
    assert await statuses(sessionmaker) == {"SUCCESS": len(burst)}
    assert await bank_transfers(sessionmaker) == {"PAID": len(burst)}
    await assert_books_balance(sessionmaker)
    # The request log was flushed on the way out: one row per answered withdrawal.
    async with sessionmaker() as session:
        logged = await session.scalar(
            select(func.count())
            .select_from(ApiRequestLog)
            .where(ApiRequestLog.path == "/api/v1/withdrawals", ApiRequestLog.status == 200)
        )
    assert logged == len(burst)


async def test_worker_sigterm_finishes_running_payouts_then_a_new_worker_pays_the_rest(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    gate: tuple[Gate, str],
    clean_db: None,
    redis: Redis,
    tmp_path: Path,
) -> None:
    held, settlement_url = gate
    async_settings = settings.model_copy(
        update={"ASYNC_SETTLEMENT": True, "SETTLEMENT_URL": settlement_url}
    )
    app = create_app(async_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "1000.00")
            tokens = [(await approved_merchant(api, admin))[1] for _ in range(2)]
            accepted = [await withdraw(api, tokens[i % 2], "5.00") for i in range(6)]
    assert {(a.status_code, a.json()["status"]) for a in accepted} == {(202, "QUEUED")}

    env = {
        "SETTLEMENT_URL": settlement_url,
        "SETTLEMENT_TIMEOUT_S": str(WAIT_S),
        "WORKER_MAX_JOBS": "2",
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "alive"),
    }
    log = tmp_path / "worker.log"
    with image_process("worker", settings, log, **env) as worker:

        async def both_jobs_running() -> bool:
            # The two jobs run at once; their payouts reach settlement in one batch or two
            # (the second waits for the first, which the gate holds).
            running = await redis.keys("arq:in-progress:*")
            return held.waiting >= 1 and len(running) == 2

        await until(both_jobs_running, "two payout jobs to run, one at settlement", worker)
        # The liveness check of deploy/k8s and deploy/docker-compose.yml sees it alive.
        check = await asyncio.create_subprocess_exec(
            "/bin/sh", str(ENTRYPOINT), *LIVENESS, cwd=ROOT, env=image_env(settings, **env)
        )
        assert await check.wait() == 0
        worker.send_signal(signal.SIGTERM)
        await until(lambda: b"shutdown on SIGTERM" in log.read_bytes(), "the signal", worker)
        held.opened.set()
        assert await exit_code(worker) == 0, log.read_text()[-3000:]
    # Every payout the worker started, it finished; the rest wait in the queue.
    after_first = await statuses(sessionmaker)
    assert "PROCESSING" not in after_first, log.read_text()[-3000:]
    assert after_first.get("SUCCESS", 0) >= 2

    with image_process("worker", settings, tmp_path / "worker2.log", **env) as worker:

        async def all_paid() -> bool:
            return await statuses(sessionmaker) == {"SUCCESS": len(accepted)}

        await until(all_paid, "the second worker to pay the rest", worker)
        worker.send_signal(signal.SIGTERM)
        assert await exit_code(worker) == 0
    assert await bank_transfers(sessionmaker) == {"PAID": len(accepted)}
    await assert_books_balance(sessionmaker)
