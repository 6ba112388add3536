"""Transaction 1's rules as a plain function over a list (app/withdrawals/decide.py)."""

import uuid
from decimal import Decimal

import pytest

from app.models import WithdrawalStatus
from app.withdrawals.decide import Line, Outcome, ReserveRequest, decide, reserved_total


def _request(merchant_id: int, amount: str, key: str | None = None) -> ReserveRequest:
    return ReserveRequest(
        merchant_id=merchant_id,
        key=key or uuid.uuid4().hex,
        request_hash="h",
        amount=Decimal(amount),
        status=WithdrawalStatus.PROCESSING,
        withdrawal_id=uuid.uuid4(),
        reserve_tx_id=uuid.uuid4(),
    )


def _line(merchant_id: int, headroom: str, status: str = "APPROVED") -> Line:
    return Line(merchant_id, status, "DE1", uuid.uuid4(), Decimal(headroom))


def _outcomes(requests: list[ReserveRequest], **kwargs: object) -> list[str]:
    return [str(d.outcome) for d in decide(requests, **kwargs)]  # type: ignore[arg-type]


def test_the_same_merchant_takes_its_headroom_in_turn() -> None:
    requests = [_request(1, "30.00"), _request(1, "30.00"), _request(1, "10.00")]
    decisions = decide(
        requests, lines={1: _line(1, "50.00")}, keys_with_withdrawal=set(), pool_available=None
    )
    assert [d.outcome for d in decisions] == [
        Outcome.RESERVED,
        Outcome.INSUFFICIENT_CREDIT,
        Outcome.RESERVED,
    ]
    assert decisions[1].headroom == Decimal("20.00")  # what was left after the first
    assert reserved_total(requests, decisions) == Decimal("40.00")


def test_a_short_pool_refuses_greedily_in_arrival_order() -> None:
    lines = {1: _line(1, "100.00"), 2: _line(2, "100.00")}
    requests = [_request(1, "30.00"), _request(2, "50.00"), _request(2, "15.00")]
    assert _outcomes(
        requests, lines=lines, keys_with_withdrawal=set(), pool_available=Decimal("45.00")
    ) == ["RESERVED", "INSUFFICIENT_POOL", "RESERVED"]


def test_each_reservation_takes_its_amount_from_the_pool_in_turn() -> None:
    lines = {1: _line(1, "100.00"), 2: _line(2, "100.00")}
    requests = [_request(1, "30.00"), _request(2, "20.00"), _request(2, "10.00")]
    assert _outcomes(
        requests, lines=lines, keys_with_withdrawal=set(), pool_available=Decimal("45.00")
    ) == ["RESERVED", "INSUFFICIENT_POOL", "RESERVED"]


def test_a_pool_refusal_takes_no_headroom() -> None:
    requests = [_request(1, "40.00"), _request(1, "20.00")]
    assert _outcomes(
        requests,
        lines={1: _line(1, "50.00")},
        keys_with_withdrawal=set(),
        pool_available=Decimal("30.00"),
    ) == ["INSUFFICIENT_POOL", "RESERVED"]


def test_unapproved_or_missing_lines_are_not_approved() -> None:
    requests = [_request(1, "1.00"), _request(2, "1.00")]
    lines = {1: _line(1, "10.00", status="SUSPENDED")}
    assert _outcomes(requests, lines=lines, keys_with_withdrawal=set(), pool_available=None) == [
        "NOT_APPROVED",
        "NOT_APPROVED",
    ]


def test_a_key_still_on_a_withdrawal_is_answered_by_it() -> None:
    request = _request(1, "1.00", key="old")
    assert _outcomes(
        [request],
        lines={1: _line(1, "10.00")},
        keys_with_withdrawal={(1, "old")},
        pool_available=None,
    ) == ["WITHDRAWAL_EXISTS"]


def test_the_same_key_twice_replays_the_first_answer_unless_the_first_gave_it_up() -> None:
    lines = {1: _line(1, "10.00")}
    twice = [_request(1, "5.00", key="k"), _request(1, "5.00", key="k")]
    assert _outcomes(twice, lines=lines, keys_with_withdrawal=set(), pool_available=None) == [
        "RESERVED",
        "KEY_TAKEN",
    ]
    given_up = [_request(1, "5.00", key="old"), _request(1, "5.00", key="old")]
    assert _outcomes(
        given_up, lines=lines, keys_with_withdrawal={(1, "old")}, pool_available=None
    ) == ["WITHDRAWAL_EXISTS", "WITHDRAWAL_EXISTS"]


@pytest.mark.parametrize("amount", ["0.00", "-5.00", "1.005", "NaN"])
def test_a_request_that_would_move_money_wrongly_cannot_be_made(amount: str) -> None:
    with pytest.raises(ValueError, match="positive amount"):
        _request(1, amount)


def test_a_request_must_open_the_withdrawal() -> None:
    with pytest.raises(ValueError, match="open status"):
        ReserveRequest(
            merchant_id=1,
            key="k",
            request_hash="h",
            amount=Decimal("1.00"),
            status=WithdrawalStatus.SUCCESS,
            withdrawal_id=uuid.uuid4(),
            reserve_tx_id=uuid.uuid4(),
        )
