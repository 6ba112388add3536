"""Property-based fuzzing of both apps from their own /openapi.json (schemathesis + hypothesis).

For every operation, schemathesis generates inputs that match the schema and inputs that do
not; each is sent to the real app with its real database, Redis and settlement over HTTP, as
an admin, as an approved merchant and anonymously wherever the operation reads a credential.
No answer may be a 5xx, and the money audit must be clean afterwards: whatever the fuzzer
managed to do (top-ups, approvals, withdrawals), every cent is where the ledger says it is.

Hypothesis runs synchronously in a worker thread and hands each request to the test's event
loop, where the app, its lifespan and its connection pools live. Generation is derandomized,
so a failure reproduces on every run.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, top_up

# Per operation, caller and mode (schema-valid, then invalid inputs); with about 20
# operations and 3 callers this keeps the run well under a minute.
EXAMPLES = 10
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
WRONG_TOKEN = {"X-Internal-Token": "not-the-internal-token-0000000000000"}


def _request_kwargs(case: Any, base_url: str, headers: dict[str, str]) -> dict[str, Any]:
    sent = case.as_transport_kwargs(base_url=base_url, headers=headers)
    kwargs = {"method": sent["method"], "url": sent["url"], "headers": sent["headers"]}
    kwargs["params"] = sent.get("params") or None
    if "json" in sent:
        kwargs["json"] = sent["json"]
    elif isinstance(sent.get("data"), str | bytes):
        kwargs["content"] = sent["data"]  # a raw (possibly malformed) body
    elif "data" in sent:
        kwargs["data"] = sent["data"]  # a form
    return kwargs


async def _fuzz(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]], base_url: str
) -> list[str]:
    """Every operation of the client's app; returns a description of every 5xx answer."""
    loop = asyncio.get_running_loop()
    spec = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    server_errors: list[str] = []

    def callers_of(operation: Any) -> list[str]:
        # Who calls makes no difference where no credential is read (login, health, ...).
        definition = spec["paths"][operation.path][operation.method.lower()]
        secured = "security" in definition or any(
            parameter["name"].lower() == "x-internal-token"
            for parameter in definition.get("parameters", [])
        )
        return list(callers) if secured else ["anonymous"]

    def send(case: Any, caller: str) -> None:
        kwargs = _request_kwargs(case, base_url, callers[caller])
        # The app runs on the test's loop; this thread only generates and waits.
        response = asyncio.run_coroutine_threadsafe(client.request(**kwargs), loop).result()
        if response.status_code >= 500:
            server_errors.append(f"{caller} {kwargs} -> {response.status_code} {response.text}")

    def fuzz_operation(operation: Any, caller: str, mode: GenerationMode) -> Callable[[], None]:
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            send(case, caller)

        def run_unless_nothing_to_generate() -> None:
            try:
                run()
            except Unsatisfiable:
                # No invalid input exists for an operation without parameters (/healthz).
                assert mode == GenerationMode.NEGATIVE, operation.label

        return run_unless_nothing_to_generate

    operations = [result.ok() for result in schema.get_all_operations()]
    # Admin operations last: the fuzzer suspending the merchant early would stop it from
    # reaching the money path at all.
    for operation in sorted(operations, key=lambda op: op.path.startswith("/api/v1/admin")):
        for caller in callers_of(operation):
            for mode in MODES:
                await asyncio.to_thread(fuzz_operation(operation, caller, mode))
    return server_errors


async def test_no_input_to_the_core_api_causes_a_5xx_or_unbalances_the_books(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    # As much money as an amount may be, so generated withdrawals mostly reach settlement.
    await top_up(api, admin, "999999999999999.99")
    _, merchant = await approved_merchant(api, admin, credit_limit="999999999999999.99")
    callers = {"admin": bearer(admin), "anonymous": {}, "merchant": bearer(merchant)}
    assert await _fuzz(api, callers, "http://api.test") == []
    await assert_books_balance(sessionmaker)


async def test_no_input_to_settlement_causes_a_5xx(
    settlement_api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Not with the real token: a caller holding it is the core itself, and payouts for
    # withdrawals the core never made would (rightly) fail the audit.
    callers = {"anonymous": {}, "wrong token": WRONG_TOKEN}
    assert await _fuzz(settlement_api, callers, "http://settlement.test") == []
    await assert_books_balance(sessionmaker)
