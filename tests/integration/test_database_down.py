"""PostgreSQL unreachable: the hot paths (asyncpg's pool) answer 503, never 500."""

import uuid

from fastapi import FastAPI

from app.auth.tokens import issue_token
from app.config import Settings
from app.dev.embedded.process import free_port
from tests.conftest import _client_for


async def test_a_withdrawal_while_postgres_is_down_is_503_database_busy(
    settings: Settings,
) -> None:
    from app.main import create_app

    down = settings.model_copy(
        update={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/creditpool"}
    )
    token = issue_token(down, user_id=1, version=0, token_type="access").token
    app: FastAPI = create_app(down)
    async for client in _client_for(app, "http://api.test"):
        response = await client.post(
            "/api/v1/withdrawals",
            json={"amount": "1.00"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "DATABASE_BUSY"
        assert response.headers["Retry-After"] == "1"
        return
    raise AssertionError("unreachable")
