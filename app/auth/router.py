"""Registration and tokens: /api/v1/auth/*."""

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.auth import service, throttle
from app.auth.errors import InvalidCredentials, RefreshTokenReused
from app.auth.schemas import RefreshIn, RegisterIn, RegisterOut, TokenIn, TokenOut
from app.auth.service import TokenPair
from app.db import SessionDep
from app.jsonbody import ExactJSONRoute
from app.ratelimit.clients import client_address, limit_per_client

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=ExactJSONRoute)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TOKEN_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TokenIn.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
        },
    }
}


_RATE_LIMITED = "RATE_LIMITED: too many requests from this address (AUTH_RL_MAX_REQUESTS)"


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterOut,
    dependencies=[Depends(limit_per_client("register"))],
    responses={
        409: {"description": "USERNAME_TAKEN"},
        422: {"description": "VALIDATION_ERROR / PASSWORD_TOO_SHORT"},
        429: {"description": _RATE_LIMITED},
    },
)
async def register(body: RegisterIn, request: Request, session: SessionDep) -> RegisterOut:
    """Sign up as a merchant; an admin approves the account and sets its credit line."""
    merchant = await service.register_merchant(
        session,
        request.app.state.settings,
        username=body.username,
        password=body.password,
        requested_credit=body.requested_credit,
        bank_account=body.bank_account,
    )
    await session.commit()
    return RegisterOut(merchant_id=merchant.id, status=merchant.status)


async def _read_credentials(request: Request) -> TokenIn:
    """Credentials from a JSON body or the OAuth2 password form (Swagger's Authorize)."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(_FORM_TYPES):
            form = await request.form()
            data: Any = {"username": form.get("username"), "password": form.get("password")}
        else:
            data = json.loads(await request.body())
        return TokenIn.model_validate(data)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"invalid JSON: {exc.msg}", "type": "json_invalid"}]
        ) from None
    except UnicodeDecodeError:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "invalid JSON: not UTF-8", "type": "json_invalid"}]
        ) from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def _token_out(tokens: TokenPair) -> TokenOut:
    return TokenOut(
        access=tokens.access.token,
        refresh=tokens.refresh.token,
        access_token=tokens.access.token,
        expires_in=tokens.access.expires_in,
    )


@router.post(
    "/token",
    response_model=TokenOut,
    openapi_extra=_TOKEN_BODY_DOC,
    dependencies=[Depends(limit_per_client("login"))],
    responses={
        401: {"description": "INVALID_CREDENTIALS"},
        429: {"description": f"{_RATE_LIMITED} / LOGIN_THROTTLED: too many failed logins"},
    },
)
async def token(request: Request, session: SessionDep) -> TokenOut:
    """Log in with a JSON body or the OAuth2 password form; returns access + refresh tokens."""
    credentials = await _read_credentials(request)
    settings, redis = request.app.state.settings, request.app.state.redis
    # Unknown usernames count too: the throttle never reveals whether a username exists.
    who = {"username": credentials.username, "client": client_address(request)}
    await throttle.check_allowed(redis, settings, **who)
    try:
        user = await service.authenticate(
            session, username=credentials.username, password=credentials.password
        )
    except InvalidCredentials:
        await throttle.record_failure(redis, settings, **who)
        raise
    await throttle.clear_failures(redis, **who)
    tokens = await service.start_session(session, settings, user=user)
    await session.commit()
    return _token_out(tokens)


@router.post(
    "/token/refresh",
    response_model=TokenOut,
    responses={401: {"description": "INVALID_TOKEN / TOKEN_EXPIRED / REFRESH_TOKEN_REUSED"}},
)
async def refresh_token(body: RefreshIn, request: Request, session: SessionDep) -> TokenOut:
    """New access and refresh tokens; the refresh token sent works only this once."""
    try:
        tokens = await service.rotate_refresh_token(
            session, request.app.state.settings, token=body.refresh
        )
    except RefreshTokenReused:
        await session.commit()  # the family's revocation stands although this request fails
        raise
    await session.commit()
    return _token_out(tokens)
