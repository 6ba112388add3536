"""Payout orders as the core sends them to settlement."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.settlement.bank import Bank, BankResult, BankUnavailable, Transfer
from app.settlement.repository import Order
from app.settlement.schemas import WithdrawRequest
from app.withdrawals.repository import WithdrawalRow

WITHDRAW = "/api/settlement/withdraw"
WITHDRAW_BATCH = "/api/settlement/withdraw/batch"


def processing_withdrawal() -> WithdrawalRow:
    """A reserved withdrawal as the hop sees it (PROCESSING), not stored anywhere: for tests
    of how the settlement client reads settlement's answers."""
    now = datetime.now(UTC)
    return WithdrawalRow(
        id=uuid.uuid4(),
        merchant_id=1,
        account_id=uuid.uuid4(),
        amount=Decimal("10.00"),
        bank_account="DE89370400440532013000",
        status="PROCESSING",
        idempotency_key="k",
        bank_reference=None,
        failure_code=None,
        reserve_tx_id=uuid.uuid4(),
        final_tx_id=None,
        attempts=1,
        created_at=now,
        updated_at=now,
    )


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
