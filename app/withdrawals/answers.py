"""What a merchant is told about a withdrawal, built from its state (and stored on its key)."""

import uuid
from dataclasses import dataclass
from typing import Any

from app.models import WithdrawalStatus
from app.money import format_amount
from app.withdrawals.errors import SettlementRefused
from app.withdrawals.repository import WithdrawalRow


@dataclass(frozen=True)
class Answer:
    """What the merchant is told: an HTTP status and body, possibly replayed from a key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def success_body(withdrawal: WithdrawalRow) -> dict[str, Any]:
    return {
        "withdrawal_id": str(withdrawal.id),
        "status": WithdrawalStatus.SUCCESS,
        "amount": format_amount(withdrawal.amount),
        "bank_reference": withdrawal.bank_reference,
        "tx_id": str(withdrawal.final_tx_id),
    }


def refused(withdrawal: WithdrawalRow) -> SettlementRefused:
    return SettlementRefused(
        f"the bank refused the payout ({withdrawal.failure_code}); the credit was released",
        extra={
            "withdrawal_id": str(withdrawal.id),
            "withdrawal_status": WithdrawalStatus.FAILED,
            "failure_code": withdrawal.failure_code,
        },
    )


def pending_body(withdrawal_id: uuid.UUID, status: str) -> dict[str, Any]:
    return {"withdrawal_id": str(withdrawal_id), "status": status}


def answer_for(withdrawal: WithdrawalRow) -> Answer:
    """The answer a withdrawal's current state deserves."""
    if withdrawal.status == WithdrawalStatus.SUCCESS:
        return Answer(200, success_body(withdrawal))
    if withdrawal.status == WithdrawalStatus.FAILED:
        return Answer(422, refused(withdrawal).problem())
    return Answer(202, pending_body(withdrawal.id, withdrawal.status))
