import httpx
from fastapi import FastAPI, Request

from app.common import install_common
from app.config import Settings


def _echo_app() -> FastAPI:
    app = FastAPI()
    install_common(app, Settings(ENVIRONMENT="test", MAX_BODY_BYTES=1024))

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


async def _post(content: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=_echo_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/echo", content=content)  # type: ignore[arg-type]


async def test_body_at_the_limit_is_accepted() -> None:
    response = await _post(b"x" * 1024)
    assert response.status_code == 200
    assert response.json() == {"received": 1024}


async def test_streamed_body_over_the_limit_gets_413() -> None:
    async def chunks():  # no Content-Length: the limit must count the streamed bytes
        for _ in range(5):
            yield b"y" * 512

    response = await _post(chunks())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_announced_body_over_the_limit_gets_413_with_request_id() -> None:
    response = await _post(b"x" * 1025)
    assert response.status_code == 413
    assert response.json()["request_id"] == response.headers["x-request-id"]
