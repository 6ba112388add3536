"""The sync hop sends batches: concurrent requests' payouts go to settlement in one call, each
request gets its own outcome, and a call that fails is an unknown outcome for every member,
never a refusal (money is released only on settlement's recorded refusal for that id)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.dev.embedded.process import free_port
from app.models import Withdrawal
from app.settlement.main import create_app as create_settlement_app
from app.withdrawals import settlement_client
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import Outcome, create_http_client
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.observability import core_api, samples
from tests.support.servers import black_hole, serve
from tests.support.settlement import CountingBank, processing_withdrawal
from tests.support.stack import settlement_settings

Sessionmaker = async_sessionmaker[AsyncSession]


class Gate:
    """Holds settlement's first call until opened, so the next requests queue behind it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0
        self.opened = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.calls += 1
            if self.calls == 1:
                await self.opened.wait()
        await self.app(scope, receive, send)


@asynccontextmanager
async def gated_settlement(settings: Settings) -> AsyncIterator[tuple[Gate, CountingBank, str]]:
    app = create_settlement_app(settlement_settings(settings))
    gate = Gate(app)
    async with app.router.lifespan_context(app), serve(gate) as base_url:  # type: ignore[arg-type]
        app.state.bank = bank = CountingBank(app.state.bank)
        try:
            yield gate, bank, f"{base_url}/api/settlement/withdraw"
        finally:
            gate.opened.set()


async def _count_processing(sessionmaker: Sessionmaker) -> int:
    async with sessionmaker() as session:
        query = (
            select(func.count()).select_from(Withdrawal).where(Withdrawal.status == "PROCESSING")
        )
        return int(await session.scalar(query) or 0)


async def _burst_behind_a_held_call(
    api: httpx.AsyncClient,
    gate: Gate,
    sessionmaker: Sessionmaker,
    first: Callable[[], Awaitable[httpx.Response]],
    burst: list[Callable[[], Awaitable[httpx.Response]]],
) -> tuple[httpx.Response, list[httpx.Response]]:
    """`first` holds the hop in the gate; the burst reserves meanwhile and waits for it, so
    the burst goes to settlement as the next batch."""
    held = asyncio.create_task(first())
    for _ in range(400):
        if gate.calls == 1:
            break
        await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(request()) for request in burst]
    for _ in range(400):
        if await _count_processing(sessionmaker) == 1 + len(burst):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # the reserved requests are now waiting in the settle batcher
    gate.opened.set()
    return await held, list(await asyncio.gather(*tasks))


async def test_concurrent_sync_withdrawals_are_settled_in_one_batch_each_with_its_outcome(
    settings: Settings, clean_db: None, redis: object, sessionmaker: Sessionmaker
) -> None:
    async with gated_settlement(settings) as (gate, bank, url):
        async with core_api(settings, SETTLEMENT_URL=url) as running:
            api = running.client
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "1000.00")
            merchants = [(await approved_merchant(api, admin))[1] for _ in range(4)]
            # Two of one merchant's, too: the batch is per process, not per merchant.
            payers = [*merchants, merchants[0]]
            before = (await api.get("/metrics")).text
            first, answers = await _burst_behind_a_held_call(
                api,
                gate,
                sessionmaker,
                lambda: withdraw(api, merchants[1], "2.00"),
                [lambda token=token: withdraw(api, token, "3.00") for token in payers],
            )
            metrics = (await api.get("/metrics")).text
    assert first.status_code == 200, first.text
    assert [a.status_code for a in answers] == [200] * len(payers), [a.text for a in answers]
    # Two settlement calls: the held one, then every other request's payout in one batch.
    assert gate.calls == 2
    assert [len(batch) for batch in bank.batches] == [1, len(payers)]
    assert set(bank.batches[1]) == {uuid.UUID(a.json()["withdrawal_id"]) for a in answers}
    # Each got its own payout: its own bank reference, its own withdrawal.
    references = [a.json()["bank_reference"] for a in answers]
    assert len(set(references)) == len(payers)
    assert {a.json()["status"] for a in answers} == {"SUCCESS"}

    # The settle batcher's histogram saw the same: a batch of one, then one of five.
    def grew(name: str, **labels: str) -> float:
        return samples(metrics, name, batcher="settle", **labels) - samples(
            before, name, batcher="settle", **labels
        )

    assert grew("creditpool_batch_size_count") == 2
    assert grew("creditpool_batch_size_sum") == 1 + len(payers)
    assert grew("creditpool_batch_size_bucket", le="1.0") == 1
    assert await bank_transfers(sessionmaker) == {"PAID": 1 + len(payers)}
    await assert_books_balance(sessionmaker)


async def test_a_rejected_account_in_a_batch_is_failed_while_the_others_succeed(
    settings: Settings, clean_db: None, redis: object, sessionmaker: Sessionmaker
) -> None:
    async with gated_settlement(settings) as (gate, bank, url):
        async with core_api(settings, SETTLEMENT_URL=url) as running:
            api = running.client
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "1000.00")
            good = [(await approved_merchant(api, admin))[1] for _ in range(3)]
            _, rejected = await approved_merchant(api, admin, bank_account="IRREJECT0003")
            payers = [good[0], rejected, good[1], good[2]]
            _, answers = await _burst_behind_a_held_call(
                api,
                gate,
                sessionmaker,
                lambda: withdraw(api, good[0], "1.00"),
                [lambda token=token: withdraw(api, token, "4.00") for token in payers],
            )
            me = (await api.get("/api/v1/me", headers=bearer(rejected))).json()
    assert [len(batch) for batch in bank.batches] == [1, len(payers)]  # all in one batch
    assert [a.status_code for a in answers] == [200, 422, 200, 200], [a.text for a in answers]
    assert answers[1].json()["code"] == "SETTLEMENT_REFUSED"
    assert answers[1].json()["withdrawal_status"] == "FAILED"
    assert me["utilized_amount"] == "0.00"  # released: settlement recorded the refusal
    assert await bank_transfers(sessionmaker) == {"PAID": 4, "REFUSED": 1}
    await assert_books_balance(sessionmaker)


def _failing_batch(status: int) -> FastAPI:
    """A settlement stand-in whose batch call fails as a whole, after a moment (so that
    concurrent requests form batches behind it)."""
    app = FastAPI()

    @app.post("/api/settlement/withdraw/batch")
    async def answer() -> JSONResponse:
        await asyncio.sleep(0.2)
        return JSONResponse({"code": "INTERNAL_ERROR"}, status_code=status)

    return app


@asynccontextmanager
async def broken_settlement(case: str, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    if case == "http_500":
        async with serve(_failing_batch(500)) as base_url:
            yield {"SETTLEMENT_URL": f"{base_url}/api/settlement/withdraw"}
    elif case == "timeout":
        async with black_hole() as hole:
            yield {"SETTLEMENT_URL": hole.url, "SETTLEMENT_TIMEOUT_S": 0.3}
    else:
        yield {"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}


@pytest.mark.parametrize("case", ["http_500", "timeout", "down"])
async def test_a_failed_batch_call_leaves_every_member_processing_until_reconciled(
    settings: Settings,
    clean_db: None,
    redis: object,
    sessionmaker: Sessionmaker,
    money: MoneyPath,
    case: str,
) -> None:
    async with broken_settlement(case, settings) as broken:
        async with core_api(settings, **broken) as running:
            api = running.client
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "1000.00")
            merchants = [(await approved_merchant(api, admin))[1] for _ in range(3)]
            before = (await api.get("/metrics")).text
            answers = await asyncio.gather(
                *(withdraw(api, merchants[i % 3], "5.00") for i in range(6))
            )
            metrics = (await api.get("/metrics")).text
            me = (await api.get("/api/v1/me", headers=bearer(merchants[0]))).json()
    assert [(a.status_code, a.json()["status"]) for a in answers] == [(202, "PROCESSING")] * 6
    assert me["utilized_amount"] == "10.00"  # still reserved: the outcome is unknown
    settled = samples(metrics, "creditpool_batch_size_sum", batcher="settle")
    assert settled - samples(before, "creditpool_batch_size_sum", batcher="settle") == 6
    assert await bank_transfers(sessionmaker) == {}
    await assert_books_balance(sessionmaker)

    async with create_http_client(settings) as http:
        report = await reconcile(money, http=http, settings=settings, older_than=timedelta(0))
    assert report.outcomes == {"PAID": 6}
    assert await bank_transfers(sessionmaker) == {"PAID": 6}
    await assert_books_balance(sessionmaker)


OTHER_ID = "00000000-0000-0000-0000-000000000001"


def _refused(withdrawal_id: str) -> dict[str, Any]:
    return {"withdrawal_id": withdrawal_id, "status": "REFUSED", "failure_code": "X"}


# (status, results for [first, second] -> body, expected reason for the second member)
ITEMS: dict[str, tuple[int, Callable[[str, str], Any], str]] = {
    "missing": (200, lambda first, _: {"results": [_refused(first)]}, "missing"),
    "for_another_id": (
        200,
        lambda first, _: {"results": [_refused(first), _refused(OTHER_ID)]},
        "other_withdrawal",
    ),
    "pending": (
        200,
        lambda first, second: {
            "results": [_refused(first), {"withdrawal_id": second, "status": "PENDING"}]
        },
        "pending",
    ),
    "item_error": (
        200,
        lambda first, second: {
            "results": [
                _refused(first),
                {"withdrawal_id": second, "status": "ERROR", "code": "PAYOUT_MISMATCH"},
            ]
        },
        "payout_mismatch",
    ),
    "unreadable": (200, lambda first, _: {"results": [_refused(first), "REFUSED"]}, "missing"),
}


@pytest.mark.parametrize("case", list(ITEMS))
async def test_an_item_that_is_not_settlements_record_for_its_withdrawal_is_unknown(
    settings: Settings, case: str
) -> None:
    status, body, reason = ITEMS[case]
    first, second = processing_withdrawal(), processing_withdrawal()
    app = FastAPI()

    @app.post("/api/settlement/withdraw/batch")
    async def answer() -> JSONResponse:
        return JSONResponse(body(str(first.id), str(second.id)), status_code=status)

    labels = {"reason": reason}
    before = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)
    async with serve(app) as base_url:
        stand_in = settings.model_copy(
            update={"SETTLEMENT_URL": f"{base_url}/api/settlement/withdraw"}
        )
        async with create_http_client(stand_in) as http:
            answers = await settlement_client.pay_batch(http, stand_in, [first, second])
    # The first member's item is settlement's refusal for it; the second's is not a record.
    assert [a.outcome for a in answers] == [Outcome.REFUSED, Outcome.UNKNOWN]
    after = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)
    assert after == (before or 0) + 1


@pytest.mark.parametrize(
    ("status", "reason"), [(202, "http_202"), (409, "http_409"), (503, "http_503")]
)
async def test_a_batch_answer_that_is_not_200_is_unknown_for_every_member(
    settings: Settings, status: int, reason: str
) -> None:
    members = [processing_withdrawal(), processing_withdrawal(), processing_withdrawal()]
    app = FastAPI()

    @app.post("/api/settlement/withdraw/batch")
    async def answer() -> JSONResponse:
        # Even with readable refusals inside: only a 200 batch answer carries records.
        results = [_refused(str(member.id)) for member in members]
        return JSONResponse({"results": results}, status_code=status)

    labels = {"reason": reason}
    before = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)
    async with serve(app) as base_url:
        stand_in = settings.model_copy(
            update={"SETTLEMENT_URL": f"{base_url}/api/settlement/withdraw"}
        )
        async with create_http_client(stand_in) as http:
            answers = await settlement_client.pay_batch(http, stand_in, members)
    assert [a.outcome for a in answers] == [Outcome.UNKNOWN] * len(members)
    after = REGISTRY.get_sample_value("creditpool_settlement_unknown_outcomes_total", labels)
    assert after == (before or 0) + len(members)
