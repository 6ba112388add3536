"""A refusal stored on a key is replayed as it was first sent, less per-request fields."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import admin_token, approved_merchant
from tests.support.money import top_up, withdraw

# What differs between two requests by nature, not by outcome (ARCHITECTURE §4, Idempotency).
PER_REQUEST = ("request_id", "instance")


def _outcome(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in PER_REQUEST}


@pytest.mark.parametrize(
    ("pool", "credit_limit", "bank_account", "code"),
    [
        ("100.00", "10.00", "DE89370400440532013000", "INSUFFICIENT_MERCHANT_CREDIT"),
        ("10.00", "100.00", "DE89370400440532013000", "INSUFFICIENT_POOL"),
        ("100.00", "100.00", "IRREJECT0001", "SETTLEMENT_REFUSED"),
    ],
)
async def test_first_refusal_and_its_replays_are_the_same_but_for_per_request_fields(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    pool: str,
    credit_limit: str,
    bank_account: str,
    code: str,
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, pool)
    _, merchant = await approved_merchant(
        api, admin, credit_limit=credit_limit, bank_account=bank_account
    )

    first = await withdraw(api, merchant, "25.00", key="refused")
    replays = [await withdraw(api, merchant, "25.00", key="refused") for _ in range(2)]

    assert first.json()["code"] == code
    for replay in replays:
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.status_code == first.status_code
        assert replay.headers["content-type"] == first.headers["content-type"]
        assert _outcome(replay.json()) == _outcome(first.json())
    # Each answer names its own request, the replays included.
    request_ids = [r.json().get("request_id") for r in (first, *replays)]
    assert None not in request_ids and len(set(request_ids)) == 3
    assert {r.json().get("instance") for r in (first, *replays)} == {"/api/v1/withdrawals"}
