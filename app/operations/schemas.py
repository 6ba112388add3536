from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from app.models import WithdrawalStatus
from app.money import MoneyOut


class SettlementView(BaseModel):
    """What settlement answered when asked now (app.withdrawals.settlement_client.Outcome)."""

    outcome: str
    bank_reference: str | None
    failure_code: str | None


class StuckWithdrawalOut(BaseModel):
    withdrawal_id: UUID
    merchant_id: int
    status: WithdrawalStatus
    amount: MoneyOut
    attempts: int
    created_at: datetime
    updated_at: datetime
    age_s: float
    settlement: SettlementView


class StuckWithdrawals(BaseModel):
    older_than_s: int
    items: list[StuckWithdrawalOut]
