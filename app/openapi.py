"""The OpenAPI document as the server really answers: every error is one Problem schema.

Routes list their own domain errors in `responses=` (a description naming the codes is
enough); this module adds the errors that the framework and shared dependencies give (401/403
from authentication, 413 from the body limit, 422 from validation, 503 from the database),
serves every 4xx/5xx as application/problem+json with the Problem schema, and writes the
rules that depend on the environment (password length, withdrawal maximum) into the schemas.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from app.auth.deps import admin_user, approved_merchant, current_caller, current_merchant
from app.config import Settings
from app.db import get_session
from app.errors import PROBLEM_JSON
from app.money import format_amount
from app.ratelimit.deps import withdrawing_merchant
from app.settlement.deps import get_engine

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details. `code` is stable; some codes add members "
    "(listed below) that name what the problem is about.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["INSUFFICIENT_POOL"]},
        "instance": {"type": "string", "description": "the request's path"},
        "request_id": {"type": "string", "description": "the X-Request-ID of the request"},
        # Extension members, each added by the codes named in its description.
        "errors": {
            "type": "array",
            "description": "VALIDATION_ERROR: where and why, never the value sent",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
        "available_credit": {"type": "string", "description": "INSUFFICIENT_MERCHANT_CREDIT"},
        "max_amount": {"type": "string", "description": "AMOUNT_ABOVE_MAXIMUM"},
        "withdrawal_id": {
            "type": "string",
            "description": "SETTLEMENT_REFUSED, IDEMPOTENCY_KEY_REUSED, PENDING payouts",
        },
        "withdrawal_status": {"type": "string", "description": "SETTLEMENT_REFUSED"},
        "failure_code": {"type": ["string", "null"], "description": "SETTLEMENT_REFUSED"},
        "tx_id": {"type": "string", "description": "top-up key or reference reused"},
        "fields": {"type": "array", "items": {"type": "string"}, "description": "PAYOUT_MISMATCH"},
        "down": {"type": "array", "items": {"type": "string"}, "description": "/readyz: 503"},
    },
    "additionalProperties": True,
}

_UNAUTHENTICATED = "NOT_AUTHENTICATED / INVALID_TOKEN / TOKEN_EXPIRED: send a valid access token"
_DATABASE = "DATABASE_BUSY: nothing changed, retry (see Retry-After)"
# What a dependency (anywhere in a route's tree) can answer besides the route's own errors.
_DEPENDENCY_ERRORS: dict[Callable[..., Any], dict[int, str]] = {
    current_caller: {401: _UNAUTHENTICATED, 503: _DATABASE},
    admin_user: {403: "ADMIN_REQUIRED"},
    current_merchant: {403: "MERCHANT_REQUIRED"},
    approved_merchant: {403: "MERCHANT_REQUIRED / MERCHANT_NOT_APPROVED"},
    # Calls current_caller, current_merchant and approved_merchant itself, then the limit.
    withdrawing_merchant: {
        401: _UNAUTHENTICATED,
        403: "MERCHANT_REQUIRED / MERCHANT_NOT_APPROVED",
        429: "RATE_LIMITED",
        503: _DATABASE,
    },
    get_session: {503: _DATABASE},
    get_engine: {503: _DATABASE},
}


def _dependency_calls(dependant: Dependant) -> list[Callable[..., Any]]:
    calls = [dependant.call] if dependant.call is not None else []
    for sub in dependant.dependencies:
        calls += _dependency_calls(sub)
    return calls


def _framework_errors(route: RouteContext, settings: Settings) -> dict[int, str]:
    errors: dict[int, list[str]] = {}
    for call in _dependency_calls(route.dependant):
        for status, description in _DEPENDENCY_ERRORS.get(call, {}).items():
            errors.setdefault(status, []).append(description)
    has_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if has_body:
        errors.setdefault(400, []).append("BAD_REQUEST: the body is not valid JSON")
        limit = f"PAYLOAD_TOO_LARGE: bodies are limited to {settings.MAX_BODY_BYTES} bytes"
        errors.setdefault(413, []).append(limit)
    d = route.dependant
    if has_body or d.path_params or d.query_params or d.header_params or d.cookie_params:
        errors.setdefault(422, []).append("VALIDATION_ERROR: see `errors`")
    return {status: " / ".join(dict.fromkeys(texts)) for status, texts in errors.items()}


def _merged(documented: str, framework: str) -> str:
    """The route's own description, plus the framework's codes it does not name yet."""
    if documented in ("", "Validation Error"):  # FastAPI's default 422 text
        return framework
    missing = [part for part in framework.split(" / ") if part.split(":")[0] not in documented]
    return " / ".join([documented, *missing])


def _as_problems(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _with_rules(schemas: dict[str, Any], settings: Settings) -> None:
    """The rules a setting decides, written where a generated client reads them."""
    if register := schemas.get("RegisterIn"):
        register["properties"]["password"]["minLength"] = settings.password_min_length
    if withdrawal := schemas.get("WithdrawalIn"):
        amount = dict(withdrawal["properties"]["amount"])
        maximum = format_amount(settings.MAX_WITHDRAWAL_AMOUNT)
        amount["description"] += f" A withdrawal is at most {maximum} (else 422)."
        withdrawal["properties"]["amount"] = amount
    # FastAPI's own error shapes: every error is a Problem instead.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    # Route contexts: the routes as included (prefixes, router dependencies), as FastAPI
    # itself reads them to write the document.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path_item = document["paths"][route.path_format]
        for method in route.methods or ():
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _framework_errors(route, settings).items():
                documented = responses.setdefault(str(status), {"description": ""})
                documented["description"] = _merged(documented["description"], description)
            _as_problems(responses)
    _with_rules(document.setdefault("components", {}).setdefault("schemas", {}), settings)
    return document


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve build_openapi's document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
