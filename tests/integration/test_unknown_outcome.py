"""Settlement down, slow or crashed around: 202 PROCESSING, then reconcile settles it once."""

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded.process import free_port
from app.main import create_app
from app.settlement.main import create_app as create_settlement_app
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.servers import black_hole, serve
from tests.support.stack import settlement_settings


async def _reconcile(db: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    # The production client (its pool, timeout and transport), as the reconciler uses it.
    async with create_http_client(settings) as http:
        report = await reconcile(db, http=http, settings=settings, older_than=timedelta(0))
    return report.outcomes


async def _accepted_but_unsettled(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, key: str
) -> tuple[str, str, str]:
    """Withdraw through an api whose settlement hop fails; returns (admin, merchant, id)."""
    async for api in _client_for(create_app(settings), "http://api.test"):
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "100.00")
        _, merchant = await approved_merchant(api, admin, credit_limit="50.00")
        response = await withdraw(api, merchant, "30.00", key=key)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "PROCESSING"
        replay = await withdraw(api, merchant, "30.00", key=key)
        assert (replay.status_code, replay.headers["idempotent-replayed"]) == (202, "true")
        me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
        assert me["utilized_amount"] == "30.00"  # still reserved: the outcome is unknown
        await assert_books_balance(sessionmaker)
        return admin, merchant, response.json()["withdrawal_id"]
    raise AssertionError("unreachable")


async def _settled_once(
    api: httpx.AsyncClient,
    merchant: str,
    withdrawal_id: str,
    key: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    fetched = await api.get(f"/api/v1/withdrawals/{withdrawal_id}", headers=bearer(merchant))
    assert fetched.json()["status"] == "SUCCESS"
    replay = await withdraw(api, merchant, "30.00", key=key)
    assert replay.status_code == 200
    assert replay.json()["status"] == "SUCCESS"
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_settlement_down_gives_202_then_reconcile_settles_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    down = settings.model_copy(
        update={"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}
    )
    _, merchant, withdrawal_id = await _accepted_but_unsettled(down, sessionmaker, key="down")
    assert await bank_transfers(sessionmaker) == {}
    assert await _reconcile(money, down) == {"UNKNOWN": 1}  # still down: left as is
    assert await _reconcile(money, settings) == {"PAID": 1}
    assert await _reconcile(money, settings) == {}  # nothing left to do
    await _settled_once(api, merchant, withdrawal_id, "down", sessionmaker)


async def test_settlement_hanging_gives_202_then_reconcile_settles_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    async with black_hole() as hole:
        hanging = settings.model_copy(
            update={"SETTLEMENT_URL": hole.url, "SETTLEMENT_TIMEOUT_S": 0.3}
        )
        _, merchant, withdrawal_id = await _accepted_but_unsettled(
            hanging, sessionmaker, key="hang"
        )
        assert hole.connections >= 1
    assert await _reconcile(money, settings) == {"PAID": 1}
    await _settled_once(api, merchant, withdrawal_id, "hang", sessionmaker)


async def test_answer_lost_after_payment_is_found_by_reconcile_not_paid_again(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    # The bank takes longer than the core waits: settlement pays, the answer never arrives.
    slow_bank = settings.model_copy(update={"BANK_LATENCY_MS": 600})
    async with serve(create_settlement_app(settlement_settings(slow_bank))) as slow_settlement:
        impatient = settings.model_copy(
            update={
                "SETTLEMENT_URL": f"{slow_settlement}/api/settlement/withdraw",
                "SETTLEMENT_TIMEOUT_S": 0.1,
            }
        )
        _, merchant, withdrawal_id = await _accepted_but_unsettled(
            impatient, sessionmaker, key="lost"
        )
        for _ in range(100):  # settlement finishes on its own time
            if await bank_transfers(sessionmaker):
                break
            await asyncio.sleep(0.05)
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    assert await _reconcile(money, settings) == {"PAID": 1}
    await _settled_once(api, merchant, withdrawal_id, "lost", sessionmaker)


async def test_reconcile_command_finishes_stuck_withdrawals(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    down = settings.model_copy(
        update={"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}
    )
    _, merchant, withdrawal_id = await _accepted_but_unsettled(down, sessionmaker, key="cli")
    env = os.environ | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": str(settings.DATABASE_URL),
        "REDIS_URL": str(settings.REDIS_URL),
        "SETTLEMENT_URL": settings.SETTLEMENT_URL,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "reconcile", "--older-than", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "examined=1 PAID=1" in result.stdout
    await _settled_once(api, merchant, withdrawal_id, "cli", sessionmaker)


async def test_reconcile_leaves_young_withdrawals_alone(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
    clean_db: None,
) -> None:
    down = settings.model_copy(
        update={"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}
    )
    await _accepted_but_unsettled(down, sessionmaker, key="young")
    async with create_http_client(settings) as http:
        report = await reconcile(money, http=http, settings=settings, older_than=timedelta(hours=1))
    assert report.examined == 0
    assert await bank_transfers(sessionmaker) == {}
