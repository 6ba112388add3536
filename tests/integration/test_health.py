import httpx
from fastapi import FastAPI

from app.config import Settings
from app.dev.embedded.process import free_port
from tests.conftest import _client_for


async def test_api_healthz_answers(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_api_readyz_checks_database_and_redis(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_settlement_health_and_readiness(settlement_api: httpx.AsyncClient) -> None:
    assert (await settlement_api.get("/healthz")).status_code == 200
    ready = await settlement_api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


async def _readyz_with(settings: Settings) -> httpx.Response:
    from app.main import create_app

    app: FastAPI = create_app(settings)
    async for client in _client_for(app, "http://api.test"):
        return await client.get("/readyz")
    raise AssertionError("unreachable")


async def test_readyz_stays_ready_but_degraded_when_redis_is_down(settings: Settings) -> None:
    down = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    response = await _readyz_with(down)
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "down"}}


async def test_readyz_names_the_database_when_it_is_down(settings: Settings) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/creditpool"
    response = await _readyz_with(settings.model_copy(update={"DATABASE_URL": url}))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["down"]) == ("SERVICE_UNAVAILABLE", ["database"])
