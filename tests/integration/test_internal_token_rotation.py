"""During a rotation settlement accepts the new token and the previous one, nothing else."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.settlement.main import create_app
from tests.support.settlement import WITHDRAW, new_order
from tests.support.stack import settlement_settings

NEW = "n" * 40
OLD = "o" * 40


@pytest.fixture
async def rotating_settlement(
    settings: Settings, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    rotating = {"INTERNAL_TOKEN": NEW, "INTERNAL_TOKEN_PREVIOUS": OLD}
    app: FastAPI = create_app(settlement_settings(settings.model_copy(update=rotating)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://s.test") as client:
            yield client


@pytest.mark.parametrize("token", [NEW, OLD], ids=["current", "previous"])
async def test_the_current_and_the_previous_token_are_both_accepted(
    rotating_settlement: httpx.AsyncClient, token: str
) -> None:
    response = await rotating_settlement.post(
        WITHDRAW, json=new_order(), headers={"X-Internal-Token": token}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PAID"


async def test_a_third_token_is_refused_during_a_rotation(
    rotating_settlement: httpx.AsyncClient,
) -> None:
    response = await rotating_settlement.post(
        WITHDRAW, json=new_order(), headers={"X-Internal-Token": "x" * 40}
    )
    assert (response.status_code, response.json()["code"]) == (403, "INTERNAL_TOKEN_INVALID")
