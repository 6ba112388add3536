import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import User
from tests.support.api import register, unique_name


async def _user_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", ""),
        ("username", "x" * 65),
        ("username", "bad name"),
        ("username", "émile"),
        ("username", "semi;colon"),
        ("username", 123),
        ("requested_credit", "0"),
        ("requested_credit", "-5"),
        ("requested_credit", "1.001"),
        ("requested_credit", "NaN"),
        ("requested_credit", None),
        ("bank_account", "DE12"),
        ("bank_account", "de89370400440532013000"),
        ("bank_account", "DE89 3704"),
        ("bank_account", "X" * 35),
        ("password", ""),
    ],
)
async def test_invalid_registration_is_422_and_creates_nothing(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    field: str,
    value: object,
) -> None:
    response = await register(api, **{field: value})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert any(field in error["loc"] for error in body["errors"])
    assert await _user_count(sessionmaker) == 0


async def test_short_password_is_refused(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await register(api, password="seven77")
    assert response.status_code == 422
    assert response.json()["code"] == "PASSWORD_TOO_SHORT"
    assert await _user_count(sessionmaker) == 0


async def test_password_is_never_echoed_in_errors(api: httpx.AsyncClient) -> None:
    response = await register(api, password=["secret-value-xyz"])
    assert response.status_code == 422
    assert "secret-value-xyz" not in response.text


async def test_accepted_edge_values(api: httpx.AsyncClient) -> None:
    response = await register(
        api, username="a._-" + "b" * 60, bank_account="AB123", requested_credit=0.01
    )
    assert response.status_code == 201, response.text


async def test_duplicate_username_is_409(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    username = unique_name()
    assert (await register(api, username=username)).status_code == 201
    again = await register(api, username=username)
    assert again.status_code == 409
    assert again.json()["code"] == "USERNAME_TAKEN"
    assert await _user_count(sessionmaker) == 1


async def test_unknown_fields_are_refused(api: httpx.AsyncClient) -> None:
    response = await register(api, is_admin=True)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"username": {"$gt": ""}}']
)
async def test_malformed_bodies_are_422_never_500(api: httpx.AsyncClient, content: bytes) -> None:
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/token/refresh"):
        response = await api.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (path, content, response.text)
        assert response.headers["content-type"] == "application/problem+json"
