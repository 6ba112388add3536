"""The core's side of the settlement hop: HTTP calls, classified into their outcomes.

`pay_batch` sends many withdrawals in one call (the api's `settle` batcher, the worker);
`pay` and `lookup` are the single calls (the reconciler).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import httpx

from app.batching import Batcher
from app.config import Settings
from app.money import format_amount
from app.observability.http import SettlementTimingTransport
from app.observability.metrics import SETTLEMENT_UNKNOWN_OUTCOMES
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.settlement_http import HopClient, SettlementHTTP
from app.withdrawals.settlement_transport import AiohttpTransport

logger = logging.getLogger("app.withdrawals.settlement")


class Outcome(StrEnum):
    PAID = "PAID"
    # Settlement's recorded refusal for this withdrawal id: the only answer that releases money.
    REFUSED = "REFUSED"
    # Anything else (timeout, connection error, any HTTP error status, PENDING, a body we
    # cannot read or for another withdrawal): keep the money reserved, the reconciler asks again.
    UNKNOWN = "UNKNOWN"
    # Settlement has no record of this withdrawal (GET 404 PAYOUT_NOT_FOUND): safe to send it.
    NOT_RECEIVED = "NOT_RECEIVED"


@dataclass(frozen=True)
class SettlementAnswer:
    outcome: Outcome
    bank_reference: str | None = None
    failure_code: str | None = None


def create_http_client(settings: Settings) -> SettlementHTTP:
    """The pooled client for settlement calls; its timeout bounds the wait for an answer."""
    # aiohttp underneath (less CPU per call than httpcore), pooled and kept alive. Idle
    # connections close after 2 s, before uvicorn's 5 s keep-alive timeout closes them from
    # settlement's side: a POST sent on a connection the server is just closing has an unknown
    # outcome (a needless 202 and a trip through the reconciler).
    limits = httpx.Limits(max_connections=100, keepalive_expiry=2.0)
    transport = SettlementTimingTransport(AiohttpTransport(limits=limits))
    return SettlementHTTP(transport, timeout_s=settings.SETTLEMENT_TIMEOUT_S)


def _headers(settings: Settings, request_id: str | None) -> dict[str, str]:
    headers = {"X-Internal-Token": settings.INTERNAL_TOKEN}
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unknown(withdrawal_id: UUID, reason: str, detail: object = "") -> SettlementAnswer:
    SETTLEMENT_UNKNOWN_OUTCOMES.labels(reason).inc()
    if reason == "pending":
        # Settlement is paying it right now (or a bank failure left it so): normal, not a bug.
        logger.warning("settlement has no outcome yet for %s", withdrawal_id)
    else:
        logger.error("settlement outcome unknown for %s: %s %s", withdrawal_id, reason, detail)
    return SettlementAnswer(Outcome.UNKNOWN)


def _unknown_all(
    withdrawals: Sequence[WithdrawalRow], reason: str, detail: object = ""
) -> list[SettlementAnswer]:
    # A batch call that failed as a whole: each member counted, the call logged once.
    SETTLEMENT_UNKNOWN_OUTCOMES.labels(reason).inc(len(withdrawals))
    ids = ", ".join(str(withdrawal.id) for withdrawal in withdrawals)
    logger.error("settlement outcome unknown for %s: %s %s", ids, reason, detail)
    return [SettlementAnswer(Outcome.UNKNOWN) for _ in withdrawals]


def _read(response: httpx.Response, withdrawal_id: UUID) -> SettlementAnswer:
    # Only settlement's own record of this withdrawal decides anything. A 422, 401/403 or 409
    # says one request failed, not that the payout was refused: on a re-drive settlement may
    # already hold it PENDING or PAID, so releasing the money then could pay it *and* free it.
    if response.status_code not in (200, 202):
        return _unknown(withdrawal_id, f"http_{response.status_code}", _json(response).get("code"))
    return _read_payout(_json(response), withdrawal_id)


def _read_payout(body: dict[str, Any], withdrawal_id: UUID) -> SettlementAnswer:
    if body.get("withdrawal_id") != str(withdrawal_id):
        return _unknown(withdrawal_id, "other_withdrawal", body.get("withdrawal_id"))
    status = body.get("status")
    if status == "PAID" and body.get("bank_reference"):
        return SettlementAnswer(Outcome.PAID, bank_reference=body["bank_reference"])
    if status == "REFUSED":
        return SettlementAnswer(Outcome.REFUSED, failure_code=body.get("failure_code"))
    if status == "PENDING":
        return _unknown(withdrawal_id, "pending")
    return _unknown(withdrawal_id, "unreadable", status)


# A batch's item errors are that order's failed request, never a refusal (as in _read).
_ITEM_ERRORS = {"PAYOUT_MISMATCH": "payout_mismatch", "BANK_UNAVAILABLE": "bank_unavailable"}


def _read_item(item: object, withdrawal_id: UUID) -> SettlementAnswer:
    if not isinstance(item, dict):
        return _unknown(withdrawal_id, "missing", type(item).__name__)
    if item.get("status") == "ERROR" and item.get("withdrawal_id") == str(withdrawal_id):
        code = item.get("code")
        return _unknown(withdrawal_id, _ITEM_ERRORS.get(str(code), "item_error"), code)
    return _read_payout(item, withdrawal_id)


def _order(withdrawal: WithdrawalRow) -> dict[str, Any]:
    return {
        "withdrawal_id": str(withdrawal.id),
        "merchant_id": withdrawal.merchant_id,
        "account_id": str(withdrawal.account_id),
        "amount": format_amount(withdrawal.amount),
        "account": withdrawal.bank_account,
    }


async def pay(
    http: HopClient,
    settings: Settings,
    withdrawal: WithdrawalRow,
    *,
    request_id: str | None = None,
) -> SettlementAnswer:
    """Ask settlement to pay; safe to repeat, settlement is idempotent on the withdrawal id."""
    try:
        response = await http.post(
            settings.SETTLEMENT_URL, json=_order(withdrawal), headers=_headers(settings, request_id)
        )
    except httpx.HTTPError as exc:
        return _unknown(withdrawal.id, "unreachable", type(exc).__name__)
    return _read(response, withdrawal.id)


async def lookup(http: HopClient, settings: Settings, withdrawal_id: UUID) -> SettlementAnswer:
    """What settlement knows of a withdrawal (the reconciler's question)."""
    try:
        response = await http.get(
            f"{settings.SETTLEMENT_URL}/{withdrawal_id}", headers=_headers(settings, None)
        )
    except httpx.HTTPError as exc:
        return _unknown(withdrawal_id, "unreachable", type(exc).__name__)
    if response.status_code == 404 and _json(response).get("code") == "PAYOUT_NOT_FOUND":
        return SettlementAnswer(Outcome.NOT_RECEIVED)
    return _read(response, withdrawal_id)


async def pay_batch(
    http: HopClient,
    settings: Settings,
    withdrawals: Sequence[WithdrawalRow],
    *,
    request_id: str | None = None,
) -> list[SettlementAnswer]:
    """Ask settlement to pay each withdrawal, in one call; one answer per withdrawal, in order.

    Safe to repeat, as `pay`. Never raises for an HTTP failure: a call that times out, fails
    or answers anything but 200 is an unknown outcome for every member, and so is an item
    that is not settlement's recorded PAID or REFUSED for that withdrawal.
    """
    if not withdrawals:
        return []
    url = f"{settings.SETTLEMENT_URL}/batch"
    body = {"orders": [_order(withdrawal) for withdrawal in withdrawals]}
    try:
        response = await http.post(url, json=body, headers=_headers(settings, request_id))
    except httpx.HTTPError as exc:
        return _unknown_all(withdrawals, "unreachable", type(exc).__name__)
    if response.status_code != 200:
        return _unknown_all(
            withdrawals, f"http_{response.status_code}", _json(response).get("code")
        )
    results = _json(response).get("results")
    items = results if isinstance(results, list) else []
    return [
        _read_item(items[index] if index < len(items) else None, withdrawal.id)
        for index, withdrawal in enumerate(withdrawals)
    ]


@dataclass(frozen=True)
class SettleRequest:
    withdrawal: WithdrawalRow
    request_id: str | None = None


Settler = Batcher[SettleRequest, SettlementAnswer]


def create_settler(http: HopClient, settings: Settings) -> Settler:
    """The api's `settle` batcher: concurrent requests' payouts go to settlement in one call."""

    async def settle(requests: Sequence[SettleRequest]) -> list[SettlementAnswer]:
        # One call, one X-Request-ID: the first member's, so settlement's request log row
        # for the batch is found from that request.
        withdrawals = [request.withdrawal for request in requests]
        return await pay_batch(http, settings, withdrawals, request_id=requests[0].request_id)

    # One attempt: an HTTP batch is never sent again as if it had been rolled back; pay_batch
    # answers a failed call as an unknown outcome for each member instead of raising.
    return Batcher("settle", settle, max_size=settings.BATCH_MAX, attempts=1)
