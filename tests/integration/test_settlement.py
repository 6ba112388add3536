"""Settlement pays each withdrawal exactly once, whatever the core sends and however often."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.settlement.bank import Transfer
from tests.conftest import _client_for
from tests.support.settlement import WITHDRAW, CountingBank, new_order, payout_order
from tests.support.stack import settlement_settings

BANK_REFERENCE = re.compile(r"^BNK-[0-9A-F]{16}$")


async def settlement_with(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A settlement app with some settings changed (the caller's test must use clean_db)."""
    from app.settlement.main import create_app

    app = create_app(settlement_settings(settings.model_copy(update=changes)))
    async for client in _client_for(app, "http://settlement.test"):
        yield client


async def counted_settlement(
    settings: Settings, **changes: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, CountingBank]]:
    """Like settlement_with, and the bank it pays with counts the calls it receives."""
    from app.settlement.main import create_app

    app = create_app(settlement_settings(settings.model_copy(update=changes)))
    async for client in _client_for(app, "http://settlement.test"):
        app.state.bank = bank = CountingBank(app.state.bank)
        yield client, bank


async def rows(sm: async_sessionmaker[AsyncSession], table: str) -> list[Any]:
    async with sm() as session:
        return list((await session.execute(text(f"SELECT * FROM {table}"))).all())  # noqa: S608


async def assert_books_agree(sm: async_sessionmaker[AsyncSession]) -> None:
    """Every final payout matches exactly one bank transfer, and no transfer lacks a payout."""
    payouts = {p.withdrawal_id: p for p in await rows(sm, "settlement_payouts")}
    transfers = {t.reference: t for t in await rows(sm, "settlement_bank_transfers")}
    assert set(transfers) <= set(payouts)
    for withdrawal_id, payout in payouts.items():
        if payout.status == "PENDING":
            continue
        transfer = transfers[withdrawal_id]
        assert (transfer.amount, transfer.account) == (payout.amount, payout.bank_account)
        assert (transfer.status, transfer.bank_reference, transfer.failure_code) == (
            payout.status,
            payout.bank_reference,
            payout.failure_code,
        )


async def test_payout_is_paid_once_with_a_bank_reference(
    settlement_api: httpx.AsyncClient, auth: dict[str, str], sessionmaker: Any
) -> None:
    order = new_order()
    response = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {"withdrawal_id", "status", "amount", "bank_reference", "failure_code"}
    assert body["withdrawal_id"] == order["withdrawal_id"]
    assert body["status"] == "PAID"
    assert body["amount"] == "10.00"
    assert BANK_REFERENCE.match(body["bank_reference"])
    assert body["failure_code"] is None
    transfers = await rows(sessionmaker, "settlement_bank_transfers")
    assert [(str(t.reference), t.status, t.bank_reference) for t in transfers] == [
        (order["withdrawal_id"], "PAID", body["bank_reference"])
    ]
    await assert_books_agree(sessionmaker)


async def test_a_json_number_amount_is_accepted_and_answered_as_a_string(
    settlement_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await settlement_api.post(WITHDRAW, json=new_order(amount=10.5), headers=auth)
    assert response.status_code == 200
    assert response.json()["amount"] == "10.50"


async def test_asking_again_returns_the_first_outcome_and_pays_nothing_more(
    settlement_api: httpx.AsyncClient, auth: dict[str, str], sessionmaker: Any
) -> None:
    order = new_order()
    first = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    # The same order written differently (a JSON number) is still the same order.
    again = await settlement_api.post(WITHDRAW, json={**order, "amount": 10}, headers=auth)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1


async def test_concurrent_duplicates_call_the_bank_once_and_the_others_answer_pending(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Any
) -> None:
    # A slow bank keeps the first request inside the bank call while the duplicate arrives.
    async for client, bank in counted_settlement(settings, BANK_LATENCY_MS=300):
        order = new_order()
        responses = await asyncio.gather(
            *(client.post(WITHDRAW, json=order, headers=auth) for _ in range(2))
        )
        # The lease holder paid; the duplicate answered PENDING without calling the bank.
        assert sorted(r.status_code for r in responses) == [200, 202]
        paid, pending = sorted(responses, key=lambda r: r.status_code)
        assert paid.json()["status"] == "PAID"
        assert pending.json() == {**paid.json(), "status": "PENDING", "bank_reference": None}
        assert bank.calls == [uuid.UUID(order["withdrawal_id"])]
        # Asked again once it is paid: the recorded outcome, still one bank call.
        again = await client.post(WITHDRAW, json=order, headers=auth)
        assert (again.status_code, again.json()) == (200, paid.json())
        assert len(bank.calls) == 1
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1
    await assert_books_agree(sessionmaker)


async def test_twenty_concurrent_duplicates_make_one_transfer(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Any
) -> None:
    async for client, bank in counted_settlement(settings, BANK_LATENCY_MS=50):
        order = new_order()
        responses = await asyncio.gather(
            *(client.post(WITHDRAW, json=order, headers=auth) for _ in range(20))
        )
        assert len(bank.calls) == 1
    assert {r.status_code for r in responses} <= {200, 202}
    paid = [r.json() for r in responses if r.status_code == 200]
    assert paid and all(body == paid[0] for body in paid)
    assert paid[0]["status"] == "PAID"
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1
    await assert_books_agree(sessionmaker)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "10.01"},
        {"merchant_id": 2},
        {"account_id": str(uuid.uuid4())},
        {"account": "GB29NWBK60161331926819"},
    ],
    ids=["amount", "merchant_id", "account_id", "account"],
)
async def test_same_withdrawal_with_a_different_order_is_a_mismatch(
    settlement_api: httpx.AsyncClient,
    auth: dict[str, str],
    sessionmaker: Any,
    change: dict[str, Any],
) -> None:
    order = new_order()
    first = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    response = await settlement_api.post(WITHDRAW, json={**order, **change}, headers=auth)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYOUT_MISMATCH"
    assert response.json()["fields"] == list(change)
    # The first order stands untouched and was paid once.
    known = await settlement_api.get(f"{WITHDRAW}/{order['withdrawal_id']}", headers=auth)
    assert known.json() == first.json()
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1


async def test_rejected_account_is_refused_and_never_paid(
    settlement_api: httpx.AsyncClient, auth: dict[str, str], sessionmaker: Any
) -> None:
    order = new_order(account="IRREJECT12345")
    response = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    assert response.status_code == 200
    assert response.json() == {
        "withdrawal_id": order["withdrawal_id"],
        "status": "REFUSED",
        "amount": "10.00",
        "bank_reference": None,
        "failure_code": "ACCOUNT_REJECTED",
    }
    again = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    assert again.json() == response.json()
    transfers = await rows(sessionmaker, "settlement_bank_transfers")
    assert [t.status for t in transfers] == ["REFUSED"]
    await assert_books_agree(sessionmaker)


async def test_get_answers_the_outcome_of_a_known_payout(
    settlement_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    order = new_order()
    paid = await settlement_api.post(WITHDRAW, json=order, headers=auth)
    response = await settlement_api.get(f"{WITHDRAW}/{order['withdrawal_id']}", headers=auth)
    assert response.status_code == 200
    assert response.json() == paid.json()


async def test_get_of_a_payout_never_received_is_404(
    settlement_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await settlement_api.get(f"{WITHDRAW}/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYOUT_NOT_FOUND"


async def test_transient_bank_failure_is_503_then_the_retry_pays_once(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Any
) -> None:
    order = new_order()
    async for failing in settlement_with(settings, BANK_FAILURE_RATE=1.0):
        response = await failing.post(WITHDRAW, json=order, headers=auth)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "BANK_UNAVAILABLE"
        assert await rows(sessionmaker, "settlement_bank_transfers") == []
        # Received but unresolved: GET says PENDING so the core's reconciler asks again.
        pending = await failing.get(f"{WITHDRAW}/{order['withdrawal_id']}", headers=auth)
        assert pending.status_code == 200
        assert pending.json()["status"] == "PENDING"
        assert pending.json()["bank_reference"] is None

    async for healthy in settlement_with(settings, BANK_FAILURE_RATE=0.0):
        retried = await healthy.post(WITHDRAW, json=order, headers=auth)
        assert retried.status_code == 200
        assert retried.json()["status"] == "PAID"
        again = await healthy.post(WITHDRAW, json=order, headers=auth)
        assert again.json() == retried.json()
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1
    await assert_books_agree(sessionmaker)


async def test_crash_after_the_bank_paid_is_completed_with_the_same_transfer(
    settings: Settings,
    clean_db: None,
    auth: dict[str, str],
    sessionmaker: Any,
    settlement_engine: AsyncEngine,
) -> None:
    from app.settlement import repository
    from app.settlement.bank import SimulatedBank

    order = new_order()
    withdrawal_id = uuid.UUID(order["withdrawal_id"])
    # The state a crash between the bank call and recording its outcome leaves behind.
    async with settlement_engine.begin() as conn:
        claimed = await repository.insert_pending(
            conn,
            [payout_order(order)],
            lease_s=0.000001,  # the crashed holder's lease has expired
        )
    pending = claimed[withdrawal_id]
    paid = await SimulatedBank(settlement_engine).pay(
        reference=withdrawal_id, amount=pending.amount, account=pending.bank_account
    )

    async for client, bank in counted_settlement(settings):
        response = await client.post(WITHDRAW, json=order, headers=auth)
        # The later request took the expired lease over and asked the bank again, which
        # answered its first transfer: still paid once.
        assert bank.calls == [withdrawal_id]
    assert response.status_code == 200
    assert response.json()["status"] == "PAID"
    assert response.json()["bank_reference"] == paid.bank_reference
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == 1
    await assert_books_agree(sessionmaker)


async def test_a_payout_whose_lease_is_held_answers_pending_without_calling_the_bank(
    settings: Settings,
    clean_db: None,
    auth: dict[str, str],
    sessionmaker: Any,
    settlement_engine: AsyncEngine,
) -> None:
    from app.settlement import repository

    order = new_order()
    # Another settlement process holds the lease and is (as far as anyone knows) in the bank.
    async with settlement_engine.begin() as conn:
        await repository.insert_pending(conn, [payout_order(order)], lease_s=60)

    async for client, bank in counted_settlement(settings):
        response = await client.post(WITHDRAW, json=order, headers=auth)
        assert bank.calls == []
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"
    assert await rows(sessionmaker, "settlement_bank_transfers") == []


async def test_flaky_bank_under_concurrent_retries_still_pays_once(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Any
) -> None:
    orders = [new_order() for _ in range(5)]
    async for flaky in settlement_with(settings, BANK_FAILURE_RATE=0.5, BANK_LATENCY_MS=5):
        responses = await asyncio.gather(
            *(flaky.post(WITHDRAW, json=order, headers=auth) for order in orders * 4)
        )
    assert {r.status_code for r in responses} <= {200, 202, 503}
    async for healthy in settlement_with(settings):
        final = [(await healthy.post(WITHDRAW, json=o, headers=auth)).json() for o in orders]
    assert [body["status"] for body in final] == ["PAID"] * len(orders)
    for order, response in zip(orders * 4, responses, strict=True):
        if response.status_code == 200:
            assert response.json() == final[orders.index(order)]
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == len(orders)
    await assert_books_agree(sessionmaker)


async def test_the_pending_claim_and_its_lease_are_committed_before_the_bank_is_called(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Any
) -> None:
    seen: list[Any] = []

    class LookingBank(CountingBank):
        async def pay_batch(self, transfers: Sequence[Transfer]) -> Any:
            # Another connection, so it sees only what is committed: a crash from here on
            # leaves this claim for the next request (or the reconciler) to re-drive.
            seen.extend(await rows(sessionmaker, "settlement_payouts"))
            return await super().pay_batch(transfers)

    from app.settlement.main import create_app

    app = create_app(settlement_settings(settings))
    async for client in _client_for(app, "http://settlement.test"):
        app.state.bank = LookingBank(app.state.bank)
        order = new_order()
        response = await client.post(WITHDRAW, json=order, headers=auth)
    assert response.json()["status"] == "PAID"
    assert [(str(p.withdrawal_id), p.status) for p in seen] == [(order["withdrawal_id"], "PENDING")]
    assert seen[0].lease_until is not None
    # And the outcome is committed before it is answered.
    assert [p.status for p in await rows(sessionmaker, "settlement_payouts")] == ["PAID"]
