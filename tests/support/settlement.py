"""Payout orders as the core sends them to settlement."""

import uuid
from collections.abc import Sequence
from typing import Any

from app.settlement.bank import Bank, BankResult, BankUnavailable, Transfer
from app.settlement.repository import Order
from app.settlement.schemas import WithdrawRequest

WITHDRAW = "/api/settlement/withdraw"
WITHDRAW_BATCH = "/api/settlement/withdraw/batch"


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
    """The settlement app's own bank, with a record of every transfer it is asked for (`calls`)
    and of every batch call (`batches`)."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank
        self.calls: list[uuid.UUID] = []
        self.batches: list[list[uuid.UUID]] = []

    async def pay_batch(self, transfers: Sequence[Transfer]) -> list[BankResult | BankUnavailable]:
        self.batches.append([transfer.reference for transfer in transfers])
        self.calls.extend(transfer.reference for transfer in transfers)
        return await self._bank.pay_batch(transfers)


def payout_order(order: dict[str, Any]) -> Order:
    """A wire order as the settlement service takes it."""
    return WithdrawRequest.model_validate(order).order()
