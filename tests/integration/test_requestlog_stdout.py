"""Structured logs on stdout: one JSON line per request and one per committed money event."""

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    merchant_id, merchant = await _funded_merchant(api, sessionmaker, bank_account="IRREJECT0003")
    capsys.readouterr()
    refused = await withdraw(api, merchant, "7.00")
    assert refused.status_code == 422
    events = _money_events(capsys)
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


async def test_a_refusal_that_moved_nothing_logs_no_money_event(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, merchant = await _funded_merchant(api, sessionmaker, credit_limit="5.00")
    capsys.readouterr()
    short = await withdraw(api, merchant, "7.00")
    assert short.status_code == 409
    assert short.json()["code"] == "INSUFFICIENT_MERCHANT_CREDIT"
    assert _money_events(capsys) == []


async def _funded_merchant(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], **register: Any
) -> tuple[int, str]:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    return await approved_merchant(api, admin, **register)


def _money_events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [line for line in json_lines(capsys.readouterr().out) if line["logger"] == "app.money"]
