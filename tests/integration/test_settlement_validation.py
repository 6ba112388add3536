"""Settlement refuses anything but a well-formed order from the core, and records nothing."""

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.settlement import WITHDRAW, new_order


async def assert_nothing_recorded(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as session:
        for table in ("settlement_payouts", "settlement_bank_transfers"):
            count = await session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            assert count == 0, table


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "INTERNAL_TOKEN_MISSING"),
        ({"X-Internal-Token": ""}, 401, "INTERNAL_TOKEN_MISSING"),
        ({"X-Internal-Token": "not-the-token"}, 403, "INTERNAL_TOKEN_INVALID"),
        ({"X-Internal-Token": "t\u00f6ken".encode("latin-1")}, 403, "INTERNAL_TOKEN_INVALID"),
    ],
    ids=["missing", "empty", "wrong", "non-ascii"],
)
async def test_withdraw_without_the_core_token_is_refused_and_records_nothing(
    settlement_api: httpx.AsyncClient,
    sessionmaker: Any,
    headers: dict[str, str | bytes],
    status: int,
    code: str,
) -> None:
    response = await settlement_api.post(WITHDRAW, json=new_order(), headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    await assert_nothing_recorded(sessionmaker)


async def test_get_without_the_core_token_is_refused(
    settlement_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    order = new_order()
    assert (await settlement_api.post(WITHDRAW, json=order, headers=auth)).status_code == 200
    url = f"{WITHDRAW}/{order['withdrawal_id']}"
    missing = await settlement_api.get(url)
    assert (missing.status_code, missing.json()["code"]) == (401, "INTERNAL_TOKEN_MISSING")
    wrong = await settlement_api.get(url, headers={"X-Internal-Token": "nope"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "INTERNAL_TOKEN_INVALID")


async def test_the_token_is_checked_before_the_body(settlement_api: httpx.AsyncClient) -> None:
    response = await settlement_api.post(WITHDRAW, json={"amount": "-1"})
    assert response.json()["code"] == "INTERNAL_TOKEN_MISSING"


@pytest.mark.parametrize(
    "raw_amount",
    [
        '"-1"',
        '"0"',
        '"1.001"',
        '"NaN"',
        '"Infinity"',
        '"1e400"',
        '"1,00"',
        '""',
        "null",
        "true",
        "[1]",
        "-1",
        "0",
        "1.001",
        "1e400",
        "NaN",
        '"1000000000000000.01"',
    ],
)
async def test_bad_amount_is_422_and_records_nothing(
    settlement_api: httpx.AsyncClient, auth: dict[str, str], sessionmaker: Any, raw_amount: str
) -> None:
    # Raw JSON text, so numbers (1e400, NaN) reach the server exactly as written.
    body = json.dumps(new_order(amount="__AMOUNT__")).replace('"__AMOUNT__"', raw_amount)
    response = await settlement_api.post(
        WITHDRAW, content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "VALIDATION_ERROR"
    await assert_nothing_recorded(sessionmaker)


@pytest.mark.parametrize(
    "change",
    [
        {"account": "de89370400440532013000"},
        {"account": "1234"},
        {"account": "A" * 35},
        {"account": "DE89 3704 0044"},
        {"merchant_id": "1"},
        {"merchant_id": True},
        {"merchant_id": 0},
        {"merchant_id": 2**63},
        {"withdrawal_id": "not-a-uuid"},
        {"account_id": 7},
        {"unexpected": "field"},
    ],
)
async def test_malformed_order_is_422_and_records_nothing(
    settlement_api: httpx.AsyncClient,
    auth: dict[str, str],
    sessionmaker: Any,
    change: dict[str, Any],
) -> None:
    response = await settlement_api.post(WITHDRAW, json=new_order(**change), headers=auth)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    await assert_nothing_recorded(sessionmaker)


@pytest.mark.parametrize(
    "field", ["withdrawal_id", "merchant_id", "account_id", "amount", "account"]
)
async def test_missing_field_is_422(
    settlement_api: httpx.AsyncClient, auth: dict[str, str], field: str
) -> None:
    order = new_order()
    del order[field]
    response = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    assert response.status_code == 422


async def test_get_with_a_malformed_id_is_422(
    settlement_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await settlement_api.get(f"{WITHDRAW}/not-a-uuid", headers=auth)
    assert response.status_code == 422
