"""Money events (reserved, settled, released): a JSON log line and a metric per movement.

`money_event` may be called anywhere inside the transaction that moves the money; the event is
emitted only after that transaction commits and forgotten if it rolls back, so the log never
claims a movement that the database does not hold.
"""

import logging
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.observability.metrics import WITHDRAWALS

logger = logging.getLogger("app.money")

MoneyEventKind = Literal["reserved", "settled", "released"]
_PENDING = "creditpool_money_events"


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


def money_event(session: AsyncSession, kind: MoneyEventKind, withdrawal: MovedWithdrawal) -> None:
    """Log and count this movement of `withdrawal` when `session`'s transaction commits."""
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
    session.sync_session.info.setdefault(_PENDING, []).append(payload)


@event.listens_for(Session, "after_commit")
def _emit_committed(session: Session) -> None:
    for payload in session.info.pop(_PENDING, []):
        WITHDRAWALS.labels(outcome=payload["event"]).inc()
        logger.info("money %s", payload["event"], extra=payload)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
