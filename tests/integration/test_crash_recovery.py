"""A real api process killed between reservation and payout: reconcile completes it once."""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded.process import free_port
from app.models import MerchantCredit, Withdrawal
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.servers import black_hole


async def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("api never came up")


async def test_api_killed_mid_payout_is_completed_by_reconcile_exactly_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    async with black_hole() as hole:
        port = free_port()
        env = os.environ | {
            "ENVIRONMENT": "test",
            "DATABASE_URL": str(settings.DATABASE_URL),
            "REDIS_URL": str(settings.REDIS_URL),
            "SETTLEMENT_URL": hole.url,  # the hop hangs, so the kill lands mid-payout
            "SETTLEMENT_TIMEOUT_S": "60",
        }
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_up(base_url, process)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as doomed_api:
                admin = await admin_token(doomed_api, sessionmaker)
                await top_up(doomed_api, admin, "100.00")
                _, merchant = await approved_merchant(doomed_api, admin, credit_limit="40.00")
                pending = asyncio.create_task(withdraw(doomed_api, merchant, "25.00", key="crash"))
                await asyncio.wait_for(hole.connected.wait(), timeout=30)
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                try:
                    await pending
                except httpx.TransportError:
                    pass  # the merchant saw the connection drop
                else:
                    raise AssertionError("the request should not have been answered")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    async with sessionmaker() as session:
        withdrawal = await session.scalar(select(Withdrawal))
        assert withdrawal is not None
        assert withdrawal.status == "PROCESSING"
        assert await session.scalar(select(MerchantCredit.utilized_amount)) == 25
    assert await bank_transfers(sessionmaker) == {}
    await assert_books_balance(sessionmaker)  # the reservation alone is consistent

    async with create_http_client(settings) as http:
        for expected in ({"PAID": 1}, {}):
            report = await reconcile(money, http=http, settings=settings, older_than=timedelta(0))
            assert report.outcomes == expected
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    async with sessionmaker() as session:
        withdrawal = await session.scalar(select(Withdrawal))
        assert withdrawal is not None and withdrawal.status == "SUCCESS"
    await assert_books_balance(sessionmaker)
    # The merchant's retry with the same key now gets the final answer, not a second payout.
    retry = await withdraw(api, merchant, "25.00", key="crash")
    assert (retry.status_code, retry.json()["status"]) == (200, "SUCCESS")
    assert retry.headers["idempotent-replayed"] == "true"
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
