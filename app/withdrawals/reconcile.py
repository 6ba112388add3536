"""Finish withdrawals whose outcome is unknown by asking settlement (`python -m app reconcile`)."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.config import Settings
from app.withdrawals import statements
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.payout import pay_claimed
from app.withdrawals.settlement_http import HopClient

logger = logging.getLogger("app.withdrawals.reconcile")


@dataclass
class ReconcileReport:
    examined: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


async def reconcile(
    db: MoneyPath,
    *,
    http: HopClient,
    settings: Settings,
    older_than: timedelta,
    limit: int = 500,
) -> ReconcileReport:
    """Finish up to `limit` open (QUEUED or PROCESSING) withdrawals older than `older_than`;
    works without Redis or a worker.

    The worker's payout path, BATCH_MAX at a time: claim (PROCESSING before anything is sent,
    rows another transaction holds are skipped, not waited for), one settlement call, one
    finish batch on `db` (the process's money path). The payout is sent again: settlement is
    idempotent on the withdrawal id, so it answers its record (PAID, or REFUSED: the only
    answer that releases money) for one it has, pays one it never received, and PENDING
    (unknown, left for the next run) for one it is paying right now.
    """
    report = ReconcileReport()
    cutoff = datetime.now(UTC) - older_than  # fixed: a claimed row is newer, never claimed again
    while report.examined < limit:
        size = min(settings.BATCH_MAX, limit - report.examined)
        chunk = await statements.claim_stale(db.engine, cutoff=cutoff, limit=size)
        outcomes = await pay_claimed(db, http=http, settings=settings, withdrawals=chunk)
        for withdrawal, outcome in zip(chunk, outcomes, strict=True):
            report.examined += 1
            report.count(outcome)
            logger.info("reconciled %s: %s", withdrawal.id, outcome)
        if len(chunk) < size:
            break
    return report
