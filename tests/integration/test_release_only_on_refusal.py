"""Money is released only on settlement's recorded refusal for that withdrawal id.

A payout settlement already made, re-driven with a request settlement turns down (a body it
cannot parse, an order that differs, a token it refuses), must stay reserved: those answers
say one request failed, not that the bank refused. The reconciler then records the payment.
"""

import asyncio
import logging
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import run_audit
from app.config import Settings
from app.dev.embedded.process import free_port
from app.main import create_app
from app.withdrawals import settlement_client
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.service import apply_settlement_answer
from app.withdrawals.settlement_client import Outcome, create_http_client
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import (
    assert_books_balance,
    bank_transfers,
    top_up,
    withdraw,
    withdrawal_row,
)
from tests.support.observability import scrape
from tests.support.servers import serve
from tests.support.settlement import processing_withdrawal


async def _paid_but_not_recorded(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], db: asyncpg.Pool
) -> tuple[str, WithdrawalRow]:
    """A withdrawal settlement paid on its first attempt whose answer the core never heard."""
    down = settings.model_copy(
        update={"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}
    )
    async for api in _client_for(create_app(down), "http://api.test"):
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "100.00")
        _, merchant = await approved_merchant(api, admin, credit_limit="50.00")
        response = await withdraw(api, merchant, "30.00", key="redrive")
        assert (response.status_code, response.json()["status"]) == (202, "PROCESSING")
        withdrawal = await withdrawal_row(db, UUID(response.json()["withdrawal_id"]))
    async with create_http_client(settings) as http:
        first = await settlement_client.pay(http, settings, withdrawal)
    assert first.outcome == Outcome.PAID  # paid at the bank; the core was not told
    return merchant, withdrawal


# Each re-drive reaches the real settlement app, which turns the request down.
REDRIVES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # 422: the body fails settlement's validation (an account it does not accept).
    "rejected_body": ("http_422", {"bank_account": "not an account"}, {}),
    # 409 PAYOUT_MISMATCH: the same withdrawal id with another amount.
    "different_order": ("http_409", {"amount": Decimal("31.00")}, {}),
    # 403: a token settlement does not accept.
    "wrong_token": ("http_403", {}, {"INTERNAL_TOKEN": "not-the-internal-token"}),
}


@pytest.mark.parametrize("case", list(REDRIVES))
async def test_paid_withdrawal_redriven_with_a_request_settlement_rejects_is_never_released(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    reason, changed_row, changed_settings = REDRIVES[case]
    merchant, withdrawal = await _paid_but_not_recorded(settings, sessionmaker, money)
    counted_before = await scrape(
        api, "creditpool_settlement_unknown_outcomes_total", reason=reason
    )

    redrive_settings = settings.model_copy(update=changed_settings)
    with caplog.at_level(logging.ERROR, logger="app.withdrawals.settlement"):
        async with create_http_client(redrive_settings) as http:
            answer = await settlement_client.pay(
                http, redrive_settings, replace(withdrawal, **changed_row)
            )
        await apply_settlement_answer(money, withdrawal=withdrawal, answer=answer)

    assert answer.outcome == Outcome.UNKNOWN
    assert reason in caplog.text and str(withdrawal.id) in caplog.text
    assert (
        await scrape(api, "creditpool_settlement_unknown_outcomes_total", reason=reason)
        == counted_before + 1
    )
    # Still reserved: PROCESSING, the merchant's credit in use, nothing back in the pool.
    assert (await withdrawal_row(money, withdrawal.id)).status == "PROCESSING"
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert me["utilized_amount"] == "30.00"
    async with sessionmaker() as session:
        report = await run_audit(session)
    assert report.ok, report.render()
    assert report.to_reconcile.violation_count == 1  # paid at the bank, not yet recorded

    # The reconciler asks settlement, which answers its record: PAID, once.
    async with create_http_client(settings) as http:
        outcome = await reconcile(money, http=http, settings=settings, older_than=timedelta(0))
    assert outcome.outcomes == {"PAID": 1}
    assert (await withdrawal_row(money, withdrawal.id)).status == "SUCCESS"
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_a_recorded_refusal_releases_the_money(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    # The simulated bank refuses this account; settlement records it before answering.
    _, merchant = await approved_merchant(
        api, admin, credit_limit="50.00", bank_account="IRREJECT0001"
    )
    response = await withdraw(api, merchant, "30.00")

    assert response.status_code == 422
    assert response.json()["code"] == "SETTLEMENT_REFUSED"
    assert response.json()["failure_code"] == "ACCOUNT_REJECTED"
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert me["utilized_amount"] == "0.00"
    assert await bank_transfers(sessionmaker) == {"REFUSED": 1}
    await assert_books_balance(sessionmaker)


async def test_paid_but_processing_is_to_reconcile_and_the_reconcile_command_finishes_it(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    _, withdrawal = await _paid_but_not_recorded(settings, sessionmaker, money)
    async with sessionmaker() as session:
        before = await run_audit(session)
    assert before.ok, before.render()  # a legal state, not a violation
    [to_reconcile] = before.to_reconcile.violations
    assert to_reconcile.startswith(f"withdrawal {withdrawal.id} (merchant ")
    assert "is PROCESSING for 30.00; the bank paid it (BNK-" in to_reconcile

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
    assert (await withdrawal_row(money, withdrawal.id)).status == "SUCCESS"
    async with sessionmaker() as session:
        after = await run_audit(session)
    assert after.ok, after.render()
    assert after.to_reconcile.violation_count == 0
    assert await bank_transfers(sessionmaker) == {"PAID": 1}


def _answering(status: int, body: dict[str, Any]) -> FastAPI:
    """A settlement stand-in over real HTTP that gives every request the same answer."""
    app = FastAPI()

    @app.post("/api/settlement/withdraw")
    async def answer() -> JSONResponse:
        return JSONResponse(body, status_code=status)

    return app


OTHER_ID = "00000000-0000-0000-0000-000000000001"
ANSWERS: dict[str, tuple[int, dict[str, Any], str]] = {
    "refused_for_another_id": (
        200,
        {"withdrawal_id": OTHER_ID, "status": "REFUSED", "failure_code": "ACCOUNT_REJECTED"},
        "other_withdrawal",
    ),
    "paid_for_another_id": (
        200,
        {"withdrawal_id": OTHER_ID, "status": "PAID", "bank_reference": "BNK-1"},
        "other_withdrawal",
    ),
    "server_error": (500, {"code": "INTERNAL_ERROR"}, "http_500"),
    "bank_unavailable": (503, {"code": "BANK_UNAVAILABLE"}, "http_503"),
    "validation_error": (422, {"code": "VALIDATION_ERROR"}, "http_422"),
    "missing_token": (401, {"code": "INTERNAL_TOKEN_MISSING"}, "http_401"),
}


@pytest.mark.parametrize("case", list(ANSWERS))
async def test_an_answer_that_is_not_settlements_record_for_the_withdrawal_is_unknown(
    settings: Settings, case: str
) -> None:
    status, body, reason = ANSWERS[case]
    withdrawal = processing_withdrawal()
    labels = {"reason": reason}
    before = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)

    async with serve(_answering(status, body)) as base_url:
        stand_in = settings.model_copy(
            update={"SETTLEMENT_URL": f"{base_url}/api/settlement/withdraw"}
        )
        async with create_http_client(stand_in) as http:
            answer = await settlement_client.pay(http, stand_in, withdrawal)

    assert answer.outcome == Outcome.UNKNOWN
    after = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)
    assert after == (before or 0) + 1
