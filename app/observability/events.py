"""Money events (reserved, settled, released): a JSON log line and a metric per movement.

Call `money_event` only once the movement is committed: each money step is one autocommit
statement (creditpool_reserve / creditpool_finish), so "it returned" means "it is committed",
and the log never claims a movement that the database does not hold.
"""

import logging
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from app.observability.metrics import WITHDRAWALS

logger = logging.getLogger("app.money")

MoneyEventKind = Literal["reserved", "settled", "released"]


class MovedWithdrawal(Protocol):
    """What an event reports of a withdrawal (app.withdrawals.repository.WithdrawalRow)."""

    @property
    def id(self) -> UUID: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def reserve_tx_id(self) -> UUID: ...
    @property
    def final_tx_id(self) -> UUID | None: ...
    @property
    def bank_reference(self) -> str | None: ...
    @property
    def failure_code(self) -> str | None: ...


def money_event(kind: MoneyEventKind, withdrawal: MovedWithdrawal) -> None:
    """Log and count this committed movement of `withdrawal`."""
    payload: dict[str, Any] = {
        "event": kind,
        "withdrawal_id": str(withdrawal.id),
        "merchant_id": withdrawal.merchant_id,
        "amount": format(withdrawal.amount, "f"),
        "tx_id": str(withdrawal.reserve_tx_id if kind == "reserved" else withdrawal.final_tx_id),
    }
    if kind == "settled":
        payload["bank_reference"] = withdrawal.bank_reference
    elif kind == "released":
        payload["failure_code"] = withdrawal.failure_code
    WITHDRAWALS.labels(outcome=kind).inc()
    logger.info("money %s", kind, extra=payload)
