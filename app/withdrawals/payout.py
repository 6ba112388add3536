"""Payouts in batches: the worker's jobs (one per withdrawal) coalesce in the process's
"payout" batcher (app/batching.py), and the reconciler pays what it claims the same way.

A batch claims its open withdrawals in one statement (statements.claim), makes one settlement
call for them (settlement_client.pay_batch) and records the definite outcomes in one finish
batch (apply_settlement_answer, so the ledger moves stay defined once). Any number of runs for
one withdrawal are safe: settlement pays a withdrawal id at most once, finish records it once.
"""

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from app.batching import Batcher
from app.config import Settings
from app.errors import DATABASE_ERRORS, DatabaseBusy, OutcomeUnknown, is_transient_database_error
from app.withdrawals import settlement_client, statements
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.service import apply_settlement_answer
from app.withdrawals.settlement_client import Outcome
from app.withdrawals.settlement_http import HopClient

logger = logging.getLogger("app.withdrawals.payout")

ALREADY_FINAL = "ALREADY_FINAL"
# Open, but locked by another transaction (another worker's claim, the reconciler's, a
# finish): not claimed, so not sent; the job tries again later.
BUSY = "BUSY"
_DEFINITE = (Outcome.PAID, Outcome.REFUSED)

PayoutBatcher = Batcher[UUID, str]


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


def is_deferred(exc: BaseException) -> bool:
    """The database was busy or unreachable: nothing is lost, a later attempt records it
    (settlement answers the same outcome again)."""
    if isinstance(exc, DatabaseBusy | OutcomeUnknown):
        return True
    return isinstance(exc, (*DATABASE_ERRORS, OSError)) and is_transient_database_error(exc)


async def pay_claimed(
    db: MoneyPath, *, http: HopClient, settings: Settings, withdrawals: Sequence[WithdrawalRow]
) -> list[str]:
    """Pay claimed (PROCESSING) withdrawals with one settlement call and record the definite
    outcomes; each one's outcome in order: PAID, REFUSED or UNKNOWN (still reserved).

    Money is released only on settlement's recorded refusal (Outcome.REFUSED).
    """
    if not withdrawals:
        return []
    answers = await settlement_client.pay_batch(http, settings, withdrawals)
    definite = [(w, a) for w, a in zip(withdrawals, answers, strict=True) if a.outcome in _DEFINITE]
    # Submitted together, they join one finish batch (one transaction).
    recorded = await asyncio.gather(
        *(apply_settlement_answer(db, withdrawal=w, answer=a) for w, a in definite),
        return_exceptions=True,
    )
    unrecorded = set()
    for (withdrawal, _), result in zip(definite, recorded, strict=True):
        if isinstance(result, BaseException):
            if not is_deferred(result):
                raise result  # a bug, not a state: nothing here is half done either way
            logger.warning("recording the payout of %s deferred: %s", withdrawal.id, result)
            unrecorded.add(withdrawal.id)
    return [
        Outcome.UNKNOWN if w.id in unrecorded else a.outcome
        for w, a in zip(withdrawals, answers, strict=True)
    ]


async def payout_batch(
    db: MoneyPath, ids: Sequence[UUID], *, http: HopClient, settings: Settings
) -> list[str]:
    """The payout batcher's work: claim, pay, record; each member's outcome (PAID, REFUSED,
    UNKNOWN, BUSY or ALREADY_FINAL)."""
    claim = await statements.claim(db.engine, ids=ids)
    paid = await pay_claimed(db, http=http, settings=settings, withdrawals=claim.claimed)
    outcomes = {w.id: outcome for w, outcome in zip(claim.claimed, paid, strict=True)}
    return [outcomes.get(i, BUSY if i in claim.busy else ALREADY_FINAL) for i in ids]


def create_payout_batcher(db: MoneyPath, *, http: HopClient, settings: Settings) -> PayoutBatcher:
    """The worker's payout batcher, one per process (creditpool_batch_size{batcher="payout"})."""
    run = partial(payout_batch, db, http=http, settings=settings)
    return Batcher("payout", run, max_size=settings.BATCH_MAX)


async def attempt_payout(
    payouts: PayoutBatcher, *, withdrawal_id: UUID, final_attempt: bool
) -> Attempt:
    """One payout attempt for a queued withdrawal (the arq job's body), in the next payout
    batch; safe to run any number of times."""
    try:
        outcome = await payouts.submit(withdrawal_id)
    except Exception as exc:
        if not is_deferred(exc):
            raise
        logger.warning("payout attempt of %s deferred: %s", withdrawal_id, exc)
        outcome = Outcome.UNKNOWN
    if outcome in (*_DEFINITE, ALREADY_FINAL):
        return Attempt(outcome)
    if final_attempt:
        logger.warning("payout of %s still %s; left for reconciliation", withdrawal_id, outcome)
    return Attempt(outcome, retry=not final_attempt)
