"""Who may withdraw is decided in transaction 1 of the request's batch, not by a lookup per
request: the access token names the merchant (`mid`), the batch checks the token's version and
the merchant's status for all its members in one statement."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.tokens import issue_token, read_token
from app.config import Settings
from app.models import Withdrawal
from tests.support.api import admin_token, approved_merchant, bearer, login
from tests.support.money import assert_books_balance, bank_transfers, count_rows, top_up, withdraw

# The per-request caller lookup of every other route (app/auth/repository.py _IDENTITY).
IDENTITY_LOOKUP = "LEFT OUTER JOIN merchants ON merchants.user_id = users.id"


@pytest.fixture
def statements(api_app: FastAPI) -> list[str]:
    """Every SQL statement the app's engine runs from now on."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(api_app.state.engine.sync_engine, "before_cursor_execute", record)
    return seen


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    token = await admin_token(api, sessionmaker)
    await top_up(api, token, "1000.00")
    return token


async def test_a_merchant_token_names_its_merchant_and_withdraws_without_a_caller_lookup(
    api: httpx.AsyncClient, admin: str, settings: Settings, statements: list[str]
) -> None:
    merchant_id, token = await approved_merchant(api, admin, credit_limit="50.00")
    assert read_token(settings, token, expected_type="access").merchant_id == merchant_id
    statements.clear()

    paid = await withdraw(api, token, "5.00")

    assert paid.status_code == 200, paid.text
    assert not [s for s in statements if IDENTITY_LOOKUP in s]


async def test_a_token_without_its_merchant_id_still_withdraws_through_the_lookup(
    api: httpx.AsyncClient,
    admin: str,
    settings: Settings,
    statements: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, token = await approved_merchant(api, admin, credit_limit="50.00")
    claims = read_token(settings, token, expected_type="access")
    # As issued before tokens carried `mid` (they live an hour across a deploy).
    older = issue_token(
        settings, user_id=claims.user_id, version=claims.version, token_type="access"
    ).token
    statements.clear()

    paid = await withdraw(api, older, "5.00")

    assert paid.status_code == 200, paid.text
    assert [s for s in statements if IDENTITY_LOOKUP in s]
    assert await bank_transfers(sessionmaker) == {"PAID": 1}


async def test_a_revoked_token_is_refused_in_the_batch_and_replays_nothing(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    merchant_id, old_token = await approved_merchant(
        api, admin, credit_limit="50.00", username="revoked-merchant"
    )
    key = uuid.uuid4().hex
    first = await withdraw(api, old_token, "5.00", key=key)
    assert first.status_code == 200, first.text
    # Suspending and reactivating revokes every token issued before.
    for step in ("suspend", "reactivate"):
        changed = await api.post(
            f"/api/v1/admin/merchants/{merchant_id}/{step}", headers=bearer(admin)
        )
        assert changed.status_code == 200, changed.text

    replay = await withdraw(api, old_token, "5.00", key=key)
    fresh = await withdraw(api, old_token, "7.00")

    for refused in (replay, fresh):
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "INVALID_TOKEN"
        assert "Idempotent-Replayed" not in refused.headers
    assert await count_rows(sessionmaker, Withdrawal) == 1
    relogged = (await login(api, "revoked-merchant"))["access"]
    again = await withdraw(api, relogged, "5.00", key=key)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["withdrawal_id"] == first.json()["withdrawal_id"]
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_a_suspended_merchants_fresh_token_is_refused_in_the_batch(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    merchant_id, _ = await approved_merchant(api, admin, username="suspended-in-batch")
    suspended = await api.post(
        f"/api/v1/admin/merchants/{merchant_id}/suspend", headers=bearer(admin)
    )
    assert suspended.status_code == 200, suspended.text
    token = (await login(api, "suspended-in-batch"))["access"]

    refused = await withdraw(api, token, "1.00")

    assert refused.status_code == 403
    assert refused.json()["code"] == "MERCHANT_NOT_APPROVED"
    assert await count_rows(sessionmaker, Withdrawal) == 0
    await assert_books_balance(sessionmaker)


@pytest.mark.parametrize("mid", ["7", True, 1.5, [1]])
def test_a_token_whose_merchant_id_is_not_an_integer_is_invalid(
    settings: Settings, mid: object
) -> None:
    import jwt

    from app.auth.errors import InvalidToken
    from app.auth.tokens import ALGORITHM

    good = issue_token(settings, user_id=1, version=0, token_type="access", merchant_id=7).token
    claims = jwt.decode(good, settings.secret_key, algorithms=[ALGORITHM]) | {"mid": mid}
    forged = jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)
    with pytest.raises(InvalidToken):
        read_token(settings, forged, expected_type="access")
