"""Every forged, stale or mistyped token is a 401 problem, never a 500 and never access."""

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.api import admin_token, approved_merchant, bearer, login, register, unique_name


def _claims(user_id: int, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j",
        "typ": "access",
        "ver": 0,
    } | overrides


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _merchant_user_id(api: httpx.AsyncClient) -> tuple[int, str]:
    username = unique_name()
    await register(api, username=username)
    tokens = await login(api, username)
    payload = jwt.decode(tokens["access"], options={"verify_signature": False})
    return int(payload["sub"]), tokens["access"]


async def _assert_401(api: httpx.AsyncClient, token: str, path: str = "/api/v1/me") -> None:
    response = await api.get(path, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in {"INVALID_TOKEN", "TOKEN_EXPIRED"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_alg_none_is_refused(api: httpx.AsyncClient) -> None:
    user_id, _ = await _merchant_user_id(api)
    claims = _claims(user_id, iat=0, exp=2**31)
    await _assert_401(api, f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.")


async def test_expired_token_is_refused(api: httpx.AsyncClient, settings: Settings) -> None:
    user_id, _ = await _merchant_user_id(api)
    past = datetime.now(UTC) - timedelta(hours=2)
    token = jwt.encode(
        _claims(user_id, iat=past, exp=past + timedelta(minutes=1)),
        settings.secret_key,
        algorithm="HS256",
    )
    response = await api.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_EXPIRED"


async def test_token_signed_with_another_key_is_refused(api: httpx.AsyncClient) -> None:
    user_id, _ = await _merchant_user_id(api)
    await _assert_401(api, jwt.encode(_claims(user_id), "another-key" * 4, algorithm="HS256"))


async def test_edited_claim_breaks_the_signature(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, access = await _merchant_user_id(api)
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["is_admin"] = True
    claims["role"] = "admin"
    await _assert_401(api, f"{header}.{_b64(claims)}.{signature}", path="/api/v1/admin/merchants")


async def test_a_role_claim_grants_nothing_even_when_signed(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    user_id, _ = await _merchant_user_id(api)
    token = jwt.encode(
        _claims(user_id, is_admin=True, role="admin"), settings.secret_key, algorithm="HS256"
    )
    response = await api.get("/api/v1/admin/merchants", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == "ADMIN_REQUIRED"


async def test_refresh_token_is_not_an_access_token(api: httpx.AsyncClient) -> None:
    username = unique_name()
    await register(api, username=username)
    await _assert_401(api, (await login(api, username))["refresh"])


async def test_token_missing_a_required_claim_is_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    user_id, _ = await _merchant_user_id(api)
    claims = _claims(user_id)
    del claims["jti"]
    await _assert_401(api, jwt.encode(claims, settings.secret_key, algorithm="HS256"))


async def test_token_for_a_deleted_user_is_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await _assert_401(api, jwt.encode(_claims(987654321), settings.secret_key, algorithm="HS256"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "x" * 5000,
        "Bearer \u00e9\u00e9",
    ],
)
async def test_garbage_authorization_headers_are_401(api: httpx.AsyncClient, header: str) -> None:
    response = await api.get("/api/v1/me", headers={"Authorization": header.encode("utf-8")})
    assert response.status_code == 401
    assert response.json()["code"] in {"INVALID_TOKEN", "NOT_AUTHENTICATED"}


async def test_no_token_is_401(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/me", "/api/v1/admin/merchants"):
        response = await api.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "NOT_AUTHENTICATED"


async def test_merchant_token_on_admin_endpoints_is_403(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    merchant_id, merchant = await approved_merchant(api, admin)
    for method, path, body in [
        ("GET", "/api/v1/admin/merchants", None),
        ("GET", f"/api/v1/admin/merchants/{merchant_id}", None),
        ("POST", "/api/v1/admin/approve", {"merchant_id": merchant_id, "credit_limit": "1000.00"}),
        ("POST", f"/api/v1/admin/merchants/{merchant_id}/suspend", None),
        ("POST", f"/api/v1/admin/merchants/{merchant_id}/reactivate", None),
    ]:
        response = await api.request(method, path, json=body, headers=bearer(merchant))
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "ADMIN_REQUIRED"


async def test_admin_without_merchant_account_gets_403_on_me(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await api.get("/api/v1/me", headers=bearer(await admin_token(api, sessionmaker)))
    assert response.status_code == 403
    assert response.json()["code"] == "MERCHANT_REQUIRED"
