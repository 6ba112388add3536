"""One payout attempt for a queued withdrawal (the arq job's body)."""

import logging
import random
from dataclasses import dataclass
from uuid import UUID

from app.config import Settings
from app.withdrawals import settlement_client, statements
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.service import apply_settlement_answer
from app.withdrawals.settlement_client import Outcome
from app.withdrawals.settlement_http import HopClient

logger = logging.getLogger("app.withdrawals.payout")


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: the outcome, and whether another attempt is worth it."""

    outcome: str
    retry: bool = False


def backoff_s(settings: Settings, attempt: int) -> float:
    """Exponential backoff with full jitter: spreads retries so a recovering settlement
    is not hit by every queued job at once."""
    ceiling = min(settings.PAYOUT_RETRY_MAX_S, settings.PAYOUT_RETRY_BASE_S * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


async def attempt_payout(
    db: MoneyPath,
    *,
    http: HopClient,
    settings: Settings,
    withdrawal_id: UUID,
    final_attempt: bool,
) -> Attempt:
    """Pay a withdrawal that is still open; safe to run any number of times.

    `db` is the process's money path (money_path.py). The withdrawal is re-read and marked
    PROCESSING in one statement (no row lock is held across the settlement call);
    settlement's idempotency on the withdrawal id is the last guard against a second payment.
    """
    withdrawal = await statements.start_processing(db.engine, withdrawal_id=withdrawal_id)
    if withdrawal is None:
        return Attempt("ALREADY_FINAL")
    answer = await settlement_client.pay(http, settings, withdrawal)
    if answer.outcome in (Outcome.PAID, Outcome.REFUSED):
        await apply_settlement_answer(db, withdrawal=withdrawal, answer=answer)
        return Attempt(answer.outcome)
    if final_attempt:
        logger.warning("payout of %s still unknown; left for reconciliation", withdrawal_id)
    return Attempt(answer.outcome, retry=not final_attempt)
