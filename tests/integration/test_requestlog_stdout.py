"""Structured logs on stdout: one JSON line per request and one per committed money event."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.observability.events import money_event
from app.observability.logging import configure_logging
from app.withdrawals.repository import WithdrawalRow
from tests.support.api import admin_token, approved_merchant
from tests.support.money import top_up, withdraw
from tests.support.observability import json_lines


async def test_one_json_line_per_request(
    api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    answered = [
        await api.get("/healthz"),
        await api.get("/api/v1/withdrawals/not-a-uuid"),
        await api.post("/api/v1/auth/register", json={}),
    ]
    lines = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == "app.access"]
    assert len(lines) == len(answered)
    for line, response in zip(lines, answered, strict=True):
        assert line["request_id"] == response.headers["X-Request-ID"]
        assert (line["service"], line["method"], line["path"], line["status"]) == (
            "api",
            response.request.method,
            response.request.url.path,
            response.status_code,
        )
        assert line["level"] == "INFO"
        assert line["duration_ms"] >= 0
        datetime.fromisoformat(line["ts"])
    assert lines[1]["route"] == "/api/v1/withdrawals/{withdrawal_id}"


async def test_a_refused_payout_logs_reserved_then_released(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    merchant_id, merchant = await approved_merchant(api, admin, bank_account="IRREJECT0003")
    capsys.readouterr()
    refused = await withdraw(api, merchant, "7.00")
    assert refused.status_code == 422
    events = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == "app.money"]
    assert [line["event"] for line in events] == ["reserved", "released"]
    withdrawal_id = refused.json()["withdrawal_id"]
    for line in events:
        assert (line["withdrawal_id"], line["merchant_id"], line["amount"]) == (
            withdrawal_id,
            merchant_id,
            "7.00",
        )
        assert line["request_id"] == refused.headers["X-Request-ID"]
        assert uuid.UUID(line["tx_id"])
    assert events[0]["tx_id"] != events[1]["tx_id"]
    assert events[1]["failure_code"] == "ACCOUNT_REJECTED"


def _row() -> WithdrawalRow:
    now = datetime.now(UTC)
    return WithdrawalRow(
        id=uuid.uuid4(),
        merchant_id=1,
        account_id=uuid.uuid4(),
        amount=Decimal("1.00"),
        bank_account="DE00",
        status="PROCESSING",
        idempotency_key="k",
        bank_reference=None,
        failure_code=None,
        reserve_tx_id=uuid.uuid4(),
        final_tx_id=None,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


async def test_money_events_wait_for_the_commit_and_vanish_with_a_rollback(
    sessionmaker: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    committed, rolled_back = _row(), _row()
    async with sessionmaker() as session:
        async with session.begin():
            money_event(session, "reserved", committed)
            assert json_lines(capsys.readouterr().out) == []
        with pytest.raises(RuntimeError):
            async with session.begin():
                money_event(session, "reserved", rolled_back)
                raise RuntimeError("the transaction fails")
        async with session.begin():
            pass
    events = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == "app.money"]
    assert [line["withdrawal_id"] for line in events] == [str(committed.id)]
