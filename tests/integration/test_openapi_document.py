"""The document's own promises, checked directly (test_openapi_contract checks them all)."""

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.openapi import build_openapi
from tests.support.api import admin_token, approved_merchant, bearer


async def test_every_error_answer_is_documented_as_a_problem(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    errors = [
        (path, method, status, response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]
    assert errors
    for path, method, status, response in errors:
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, (path, method, status)
    me = document["paths"]["/api/v1/me"]["get"]["responses"]
    assert {"401", "403", "503"} <= set(me)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_idempotency_key_is_required_in_the_document_and_missing_is_still_400(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    document = (await api.get("/openapi.json")).json()
    parameters = document["paths"]["/api/v1/withdrawals"]["post"]["parameters"]
    assert [(p["name"], p["required"]) for p in parameters] == [("Idempotency-Key", True)]
    _, merchant = await approved_merchant(api, await admin_token(api, sessionmaker))
    response = await api.post(
        "/api/v1/withdrawals", json={"amount": "1.00"}, headers=bearer(merchant)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"


async def test_the_amount_pattern_refuses_zero_and_above_the_maximum(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    amount = document["components"]["schemas"]["WithdrawalIn"]["properties"]["amount"]
    pattern = re.compile(amount["pattern"])
    for refused in ("0", "0.00", "01", "1000000000000000.01", "10000000000000000"):
        assert not pattern.match(refused), refused
    for allowed in ("0.01", "10.5", "999999999999999.99", "1000000000000000"):
        assert pattern.match(allowed), allowed


def test_the_password_minimum_follows_the_environment(settings: Settings) -> None:
    for environment, minimum in (("dev", 1), ("test", 8)):
        app_settings = settings.model_copy(update={"ENVIRONMENT": environment})
        document = build_openapi(create_app(app_settings), app_settings)
        password = document["components"]["schemas"]["RegisterIn"]["properties"]["password"]
        assert password["minLength"] == minimum == app_settings.password_min_length


async def test_a_405_allows_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/withdrawals")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
