"""Settlement's batch endpoint: each order gets what the single endpoint gives it, with every
guarantee of the single one (paid once, the first order stands, a held lease is respected, a
refusal is recorded before it is answered), set-based for the whole batch."""

import asyncio
import random
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.requestlog.buffer import flush as flush_request_log
from app.settlement import repository
from app.settlement.bank import BankResult, BankUnavailable, Transfer
from app.settlement.main import create_app
from tests.conftest import _client_for
from tests.integration.test_settlement import (
    BANK_REFERENCE,
    assert_books_agree,
    counted_settlement,
    rows,
    settlement_with,
)
from tests.support.observability import logged_requests
from tests.support.settlement import (
    WITHDRAW,
    WITHDRAW_BATCH,
    CountingBank,
    new_order,
    payout_order,
)
from tests.support.stack import settlement_settings

Sessionmaker = async_sessionmaker[AsyncSession]
KINDS = ("new", "paid", "refused", "leased", "expired", "mismatched", "rejected")


async def _prepare(
    client: httpx.AsyncClient, engine: AsyncEngine, auth: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """One order of each kind, with the state its kind names already stored."""
    orders = {kind: new_order() for kind in KINDS}
    orders["refused"]["account"] = orders["rejected"]["account"] = "IRREJECT0001"
    for kind in ("paid", "refused", "mismatched"):
        first = await client.post(WITHDRAW, json=orders[kind], headers=auth)
        assert first.status_code == 200, first.text
    orders["mismatched"] = {**orders["mismatched"], "amount": "10.01"}
    async with repository.autocommit(engine) as conn:
        # Another request is in the bank call for this one (a live lease) ...
        await repository.insert_pending(conn, [payout_order(orders["leased"])], lease_s=60)
        # ... and one crashed mid-call for this one (its lease has expired).
        await repository.insert_pending(conn, [payout_order(orders["expired"])], lease_s=1e-6)
    return orders


def _answer(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    """A single endpoint's answer as the batch's item for that order would read."""
    if status_code in (200, 202):
        return {**body, "bank_reference": "BNK" if body["bank_reference"] else None}
    return {"status": "ERROR", "code": body["code"]}


def _item(body: dict[str, Any]) -> dict[str, Any]:
    if body["status"] == "ERROR":
        return {key: body[key] for key in ("status", "code")}
    return {**body, "bank_reference": "BNK" if body["bank_reference"] else None}


async def test_a_mixed_batch_answers_each_order_as_the_single_endpoint_does(
    settings: Settings,
    clean_db: None,
    auth: dict[str, str],
    settlement_engine: AsyncEngine,
    sessionmaker: Any,
) -> None:
    async for client, bank in counted_settlement(settings):
        # The earlier states are written as settlement writes them: as its role.
        batched = await _prepare(client, settlement_engine, auth)
        alone = await _prepare(client, settlement_engine, auth)
        bank.calls.clear()
        bank.batches.clear()

        response = await client.post(
            WITHDRAW_BATCH, json={"orders": list(batched.values())}, headers=auth
        )
        # The batch's bank call: only the orders it leased, all in one call.
        assert [sorted(batch) for batch in bank.batches] == [
            sorted(
                uuid.UUID(batched[kind]["withdrawal_id"]) for kind in ("new", "expired", "rejected")
            )
        ]
        singles = [
            await client.post(WITHDRAW, json=order, headers=auth) for order in alone.values()
        ]
        known = {
            kind: await client.get(f"{WITHDRAW}/{batched[kind]['withdrawal_id']}", headers=auth)
            for kind in ("paid", "refused")
        }

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    by_kind = dict(zip(KINDS, results, strict=True))
    assert [item["withdrawal_id"] for item in results] == [
        order["withdrawal_id"] for order in batched.values()
    ]
    assert {kind: item["status"] for kind, item in by_kind.items()} == {
        "new": "PAID",
        "paid": "PAID",
        "refused": "REFUSED",
        "leased": "PENDING",
        "expired": "PAID",
        "mismatched": "ERROR",
        "rejected": "REFUSED",
    }
    assert BANK_REFERENCE.match(by_kind["new"]["bank_reference"])
    assert by_kind["mismatched"]["code"] == "PAYOUT_MISMATCH"
    assert "amount" in by_kind["mismatched"]["detail"]
    assert by_kind["rejected"]["failure_code"] == "ACCOUNT_REJECTED"
    # Each item is what the single endpoint answers the same order in the same state.
    for kind, single, item in zip(KINDS, singles, results, strict=True):
        expected = _answer(single.status_code, single.json())
        if "withdrawal_id" in expected:
            expected["withdrawal_id"] = item["withdrawal_id"]
        assert _item(item) == expected, kind
    # An order paid or refused before answers its first outcome: the very same payout.
    for kind in ("paid", "refused"):
        assert by_kind[kind] == known[kind].json()


async def test_repeated_ids_across_concurrent_batches_are_paid_once(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Sessionmaker
) -> None:
    orders = [new_order() for _ in range(12)]
    rng = random.Random(16)
    # Overlapping batches, each in its own order: claims race on common ids from all sides.
    batches = [rng.sample(orders, 8) for _ in range(6)]
    async for client, bank in counted_settlement(settings, BANK_LATENCY_MS=50):
        responses = await asyncio.gather(
            *(client.post(WITHDRAW_BATCH, json={"orders": b}, headers=auth) for b in batches)
        )
        final = await client.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
        calls = bank.calls
    assert [r.status_code for r in responses] == [200] * len(batches)
    # Every id reached the bank exactly once, whichever batch leased it.
    assert sorted(calls) == sorted(uuid.UUID(o["withdrawal_id"]) for o in orders)
    paid = {item["withdrawal_id"]: item for item in final.json()["results"]}
    assert {item["status"] for item in paid.values()} == {"PAID"}
    for response in responses:
        for item in response.json()["results"]:
            # The others answered PENDING (leased by another batch) or the same payout.
            assert item["status"] in ("PAID", "PENDING"), item
            if item["status"] == "PAID":
                assert item == paid[item["withdrawal_id"]]
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == len(orders)
    await assert_books_agree(sessionmaker)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "INTERNAL_TOKEN_MISSING"),
        ({"X-Internal-Token": "nope"}, 403, "INTERNAL_TOKEN_INVALID"),
    ],
    ids=["missing", "wrong"],
)
async def test_the_batch_needs_the_internal_token(
    settlement_api: httpx.AsyncClient,
    sessionmaker: Sessionmaker,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await settlement_api.post(
        WITHDRAW_BATCH, json={"orders": [new_order()]}, headers=headers
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert await rows(sessionmaker, "settlement_payouts") == []


def _twice(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [order, {**order, "amount": "11.00"}]


BAD_BATCHES: dict[str, tuple[Any, str]] = {
    "too_many": ([new_order() for _ in range(4)], "BATCH_TOO_LARGE"),
    "same_id_twice": (_twice(new_order()), "VALIDATION_ERROR"),
    "no_orders": ([], "VALIDATION_ERROR"),
    "bad_order": ([new_order(), new_order(amount="-1.00")], "VALIDATION_ERROR"),
    "unknown_field": ([new_order(note="x")], "VALIDATION_ERROR"),
    "not_a_list": ({"withdrawal_id": str(uuid.uuid4())}, "VALIDATION_ERROR"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
async def test_a_bad_batch_is_422_and_stores_nothing(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Sessionmaker, case: str
) -> None:
    orders, code = BAD_BATCHES[case]
    async for client, bank in counted_settlement(settings, BATCH_MAX=3):
        response = await client.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
        assert bank.calls == []
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert await rows(sessionmaker, "settlement_payouts") == []
    assert await rows(sessionmaker, "settlement_bank_transfers") == []


async def test_bank_unavailable_items_give_up_their_leases_and_a_retry_pays_once(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Sessionmaker
) -> None:
    orders = [new_order() for _ in range(3)]
    async for failing in settlement_with(settings, BANK_FAILURE_RATE=1.0):
        response = await failing.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
    assert response.status_code == 200, response.text
    assert [(i["withdrawal_id"], i["status"], i["code"]) for i in response.json()["results"]] == [
        (o["withdrawal_id"], "ERROR", "BANK_UNAVAILABLE") for o in orders
    ]
    # Received, unresolved and free: nobody holds the lease, so the retry need not wait.
    payouts = await rows(sessionmaker, "settlement_payouts")
    assert [(p.status, p.lease_until) for p in payouts] == [("PENDING", None)] * len(orders)
    assert await rows(sessionmaker, "settlement_bank_transfers") == []

    async for healthy, bank in counted_settlement(settings):
        retried = await healthy.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
        again = await healthy.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
        assert len(bank.calls) == len(orders)  # the second asking pays nothing more
    assert {item["status"] for item in retried.json()["results"]} == {"PAID"}
    assert again.json() == retried.json()
    assert len(await rows(sessionmaker, "settlement_bank_transfers")) == len(orders)
    await assert_books_agree(sessionmaker)


async def test_a_refusal_is_recorded_before_the_batch_answers_it(
    settings: Settings, clean_db: None, auth: dict[str, str], sessionmaker: Sessionmaker
) -> None:
    seen: list[Any] = []

    class LookingBank(CountingBank):
        async def pay_batch(
            self, transfers: Sequence[Transfer]
        ) -> list[BankResult | BankUnavailable]:
            # Another connection: only what is committed. The claims come before the bank.
            seen.extend(await rows(sessionmaker, "settlement_payouts"))
            return await super().pay_batch(transfers)

    app = create_app(settlement_settings(settings))
    orders = [new_order(), new_order(account="IRREJECT0002")]
    async for client in _client_for(app, "http://settlement.test"):
        app.state.bank = LookingBank(app.state.bank)
        response = await client.post(WITHDRAW_BATCH, json={"orders": orders}, headers=auth)
        await flush_request_log(app.state.request_log, app.state.engine)
    assert [i["status"] for i in response.json()["results"]] == ["PAID", "REFUSED"]
    assert sorted(p.status for p in seen) == ["PENDING", "PENDING"]
    assert all(p.lease_until is not None for p in seen)
    # Committed before answered: a refusal the core hears is settlement's record.
    stored = {
        str(p.withdrawal_id): p.status for p in await rows(sessionmaker, "settlement_payouts")
    }
    assert stored == {orders[0]["withdrawal_id"]: "PAID", orders[1]["withdrawal_id"]: "REFUSED"}
    # The request log row of a batch has no single withdrawal id.
    [logged] = await logged_requests(sessionmaker, path=WITHDRAW_BATCH)
    assert (logged.status, logged.withdrawal_id) == (200, None)
