"""Payout orders as the core sends them to settlement."""

import uuid
from decimal import Decimal
from typing import Any

from app.settlement.bank import Bank, BankResult

WITHDRAW = "/api/settlement/withdraw"


def new_order(**overrides: Any) -> dict[str, Any]:
    return {
        "withdrawal_id": str(uuid.uuid4()),
        "merchant_id": 1,
        "account_id": str(uuid.uuid4()),
        "amount": "10.00",
        "account": "DE89370400440532013000",
        **overrides,
    }


class CountingBank:
    """The settlement app's own bank, with a record of every call it receives."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank
        self.calls: list[uuid.UUID] = []

    async def pay(self, *, reference: uuid.UUID, amount: Decimal, account: str) -> BankResult:
        self.calls.append(reference)
        return await self._bank.pay(reference=reference, amount=amount, account=account)
