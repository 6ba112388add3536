"""Helpers for the guard-rail and observability tests: apps with their own settings, scrapes,
the request log and the JSON lines on stdout."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import ApiRequestLog
from app.requestlog.buffer import flush


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient

    async def flush_request_log(self) -> int:
        return await flush(self.app.state.request_log, self.app.state.engine)


@asynccontextmanager
async def core_api(settings: Settings, **overrides: Any) -> AsyncIterator[RunningApp]:
    """The core API built with `overrides` on top of the test settings, lifespan included."""
    from app.main import create_app

    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield RunningApp(app, client)


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def scrape(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text, name, **labels)


async def logged_requests(
    sessionmaker: async_sessionmaker[AsyncSession], **equal: Any
) -> list[ApiRequestLog]:
    async with sessionmaker() as session:
        query = select(ApiRequestLog).filter_by(**equal).order_by(ApiRequestLog.id)
        return list((await session.scalars(query)).all())


async def wait_for_logged(
    sessionmaker: async_sessionmaker[AsyncSession], *, count: int = 1, **equal: Any
) -> list[ApiRequestLog]:
    """Rows another process writes on its own schedule (the settlement server's writer)."""
    for _ in range(200):
        rows = await logged_requests(sessionmaker, **equal)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {count} request log rows with {equal} after 10 s")


def json_lines(captured: str) -> list[dict[str, Any]]:
    """The JSON log lines among what was written to stdout."""
    lines = []
    for line in captured.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
