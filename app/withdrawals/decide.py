"""Transaction 1's rules, as plain functions over lists: who is reserved, who is refused.

The batch's members are decided in arrival order against what the locks let them see (the
merchants' lines, the pool), exactly as if they had come one at a time: the same merchant twice
takes its headroom in turn, and a member that the pool cannot cover is refused without taking
anything, so a later, smaller one may still fit.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from app.auth.tokens import TokenHolder
from app.models import MerchantStatus, WithdrawalStatus


class Outcome(StrEnum):
    KEY_TAKEN = "KEY_TAKEN"  # an earlier member stored an answer on this key: replay it
    RESERVED = "RESERVED"
    NOT_APPROVED = "NOT_APPROVED"  # nothing decided: the key is given up
    INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"  # final: stored on the key
    WITHDRAWAL_EXISTS = "WITHDRAWAL_EXISTS"  # key past retention: the withdrawal answers
    INSUFFICIENT_POOL = "INSUFFICIENT_POOL"  # final: stored on the key


@dataclass(frozen=True)
class ReserveRequest:
    """One withdrawal asking to be reserved (ids chosen up front, so a retry reuses them)."""

    merchant_id: int
    key: str
    request_hash: str
    amount: Decimal
    status: WithdrawalStatus  # QUEUED (async mode) or PROCESSING (sync mode)
    withdrawal_id: UUID
    reserve_tx_id: UUID
    # None for the process's own callers (the test factories), which hold no token.
    holder: TokenHolder | None = None

    def __post_init__(self) -> None:
        # The caller's checks are not the money path's: a bad request moves no money.
        if self.status not in (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING):
            raise ValueError(f"{self.status} is not an open status")
        if (
            not self.amount.is_finite()
            or self.amount <= 0
            or self.amount != self.amount.quantize(Decimal("0.01"))
        ):
            raise ValueError(f"{self.amount} is not a positive amount with two places")

    @property
    def key_id(self) -> tuple[int, str]:
        return (self.merchant_id, self.key)


@dataclass(frozen=True)
class Line:
    """A merchant's credit line as seen under its row lock."""

    merchant_id: int
    status: str
    bank_account: str
    account_id: UUID
    headroom: Decimal  # credit_limit - utilized_amount


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    headroom: Decimal | None = None  # what the line had left, for INSUFFICIENT_CREDIT


def decide(
    requests: list[ReserveRequest],
    *,
    lines: dict[int, Line],
    keys_with_withdrawal: set[tuple[int, str]],
    pool_available: Decimal | None,
) -> list[Decision]:
    """One decision per request, in order. `pool_available=None` means the pool is not
    checked here (the batch's sum is taken from it in one conditional UPDATE afterwards)."""
    headroom = {merchant_id: line.headroom for merchant_id, line in lines.items()}
    pool = pool_available
    answered: set[tuple[int, str]] = set()  # keys an earlier member stored an answer on
    decisions = []
    for request in requests:
        if request.key_id in answered:
            decisions.append(Decision(Outcome.KEY_TAKEN))
            continue
        line = lines.get(request.merchant_id)
        if line is None or line.status != MerchantStatus.APPROVED:
            decisions.append(Decision(Outcome.NOT_APPROVED))
            continue
        left = headroom[request.merchant_id]
        if left < request.amount:
            decisions.append(Decision(Outcome.INSUFFICIENT_CREDIT, headroom=left))
            answered.add(request.key_id)
        elif request.key_id in keys_with_withdrawal:
            decisions.append(Decision(Outcome.WITHDRAWAL_EXISTS))
        elif pool is not None and pool < request.amount:
            decisions.append(Decision(Outcome.INSUFFICIENT_POOL))
            answered.add(request.key_id)
        else:
            answered.add(request.key_id)
            headroom[request.merchant_id] = left - request.amount
            if pool is not None:
                pool -= request.amount
            decisions.append(Decision(Outcome.RESERVED))
    return decisions


def reserved_total(requests: list[ReserveRequest], decisions: list[Decision]) -> Decimal:
    return sum(
        (r.amount for r, d in zip(requests, decisions, strict=True) if d.outcome == "RESERVED"),
        Decimal("0.00"),
    )
