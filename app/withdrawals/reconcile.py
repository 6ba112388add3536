"""Finish withdrawals whose outcome is unknown by asking settlement (`python -m app reconcile`)."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.config import Settings
from app.withdrawals import settlement_client, statements
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.service import apply_settlement_answer
from app.withdrawals.settlement_client import Outcome
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
    """Ask settlement about each open (QUEUED or PROCESSING) withdrawal older than
    `older_than` and finish it; works without Redis or a worker.

    `db` is the process's money path (money_path.py); finishing joins its finish batches.
    Never received -> sent now; pending at settlement -> sent again (settlement pays at most
    once per withdrawal id); still unknown -> left for the next run. Money is released only
    on settlement's recorded refusal for the withdrawal (settlement_client.Outcome.REFUSED).
    """
    report = ReconcileReport()
    stuck = await statements.open_older_than(
        db.engine, cutoff=datetime.now(UTC) - older_than, limit=limit
    )
    for withdrawal in stuck:
        report.examined += 1
        answer = await settlement_client.lookup(http, settings, withdrawal.id)
        if answer.outcome in (Outcome.NOT_RECEIVED, Outcome.UNKNOWN):
            # PROCESSING before the payout is sent, as the worker does: a withdrawal the bank
            # may have paid is never left QUEUED (the audit counts that as a violation). This
            # also counts the attempt and moves it to the back of the next run's list.
            processing = await statements.start_processing(db.engine, withdrawal_id=withdrawal.id)
            if processing is None:  # finished meanwhile by a request or a worker
                report.count("ALREADY_FINAL")
                continue
            withdrawal = processing
            answer = await settlement_client.pay(http, settings, withdrawal)
        if answer.outcome in (Outcome.PAID, Outcome.REFUSED):
            await apply_settlement_answer(db, withdrawal=withdrawal, answer=answer)
        report.count(answer.outcome)
        logger.info("reconciled %s: %s", withdrawal.id, answer.outcome)
    return report
