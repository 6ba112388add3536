"""Money helpers for tests: fund the pool, withdraw, and prove the books."""

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import run_audit
from app.models import Withdrawal
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.repository import WithdrawalRow, row_columns
from app.withdrawals.repository import withdrawal_row as to_row
from tests.support.api import bearer


async def top_up(api: httpx.AsyncClient, admin: str, amount: str) -> httpx.Response:
    response = await api.post(
        "/api/v1/admin/pool/topup", json={"amount": amount}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text
    return response


async def withdraw(
    api: httpx.AsyncClient, token: str, amount: Any = "1.00", key: str | None = None
) -> httpx.Response:
    headers = bearer(token) | {"Idempotency-Key": key or uuid.uuid4().hex}
    return await api.post("/api/v1/withdrawals", json={"amount": amount}, headers=headers)


async def assert_books_balance(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Every invariant of ARCHITECTURE section 5 holds exactly."""
    async with sessionmaker() as session:
        report = await run_audit(session)
    assert report.ok, report.render()


async def bank_transfers(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Transfers the simulated bank made, by status (the money that really left)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT status, count(*) FROM settlement_bank_transfers GROUP BY status")
        )
        return {status: count for status, count in rows}


async def count_rows(sessionmaker: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def withdrawal_row(db: MoneyPath, withdrawal_id: uuid.UUID) -> WithdrawalRow:
    """The withdrawal as the money path reads it (what a re-drive sends to settlement)."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(select(*row_columns()).where(Withdrawal.id == withdrawal_id))
        ).first()
    assert row is not None, withdrawal_id
    return to_row(row)
