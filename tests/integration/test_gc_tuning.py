"""Both ASGI apps tune the garbage collector once their startup is done."""

import gc
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.gc_tuning import GEN0_THRESHOLD
from app.main import create_app as create_api
from app.settlement.main import create_app as create_settlement


@pytest.mark.parametrize("create_app", [create_api, create_settlement], ids=["api", "settlement"])
async def test_app_startup_raises_the_young_generation_threshold(
    settings: Settings, create_app: Callable[[Settings], FastAPI]
) -> None:
    default = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
            assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*default)
