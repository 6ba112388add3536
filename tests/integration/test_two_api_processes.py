"""Two api processes (separate apps, engines and batchers, so separate connections) racing on
the same merchants and the same pool: no deadlock reaches a merchant, nothing is overdrawn,
and the audit is clean."""

import asyncio
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw


async def test_two_api_processes_racing_on_the_same_merchants_keep_the_books(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clean_db: None
) -> None:
    no_limit = settings.model_copy(update={"RL_MAX_REQUESTS": 0})
    async for first in _client_for(create_app(no_limit), "http://api-1.test"):
        async for second in _client_for(create_app(no_limit), "http://api-2.test"):
            admin = await admin_token(first, sessionmaker)
            await top_up(first, admin, "50.00")
            merchants = [
                (await approved_merchant(first, admin, credit_limit="12.00"))[1] for _ in range(3)
            ]
            # 3 merchants x 2 processes x 8 = 48 withdrawals of 2.00: 18 fit the lines
            # (6 each), the pool (25 of them) is not the limit.
            requests = [
                withdraw(api, token, "2.00")
                for _ in range(8)
                for api in (first, second)
                for token in merchants
            ]
            responses = await asyncio.gather(*requests)
            codes = Counter(r.json().get("code", r.json().get("status")) for r in responses)
            assert codes == {"SUCCESS": 18, "INSUFFICIENT_MERCHANT_CREDIT": 30}, codes
            for token in merchants:
                me = (await second.get("/api/v1/me", headers=bearer(token))).json()
                assert (me["utilized_amount"], me["available_credit"]) == ("12.00", "0.00")
    assert await bank_transfers(sessionmaker) == {"PAID": 18}
    await assert_books_balance(sessionmaker)
