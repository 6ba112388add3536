from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from app.models import WithdrawalStatus
from app.money import Amount, MoneyOut


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount


class WithdrawalOut(BaseModel):
    withdrawal_id: UUID
    status: WithdrawalStatus
    amount: MoneyOut
    bank_reference: str | None
    failure_code: str | None
    tx_id: UUID | None
    created_at: datetime
    updated_at: datetime


class WithdrawalPage(BaseModel):
    items: list[WithdrawalOut]
    next_cursor: str | None
