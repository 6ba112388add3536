"""Idempotency-Key semantics (Stripe / IETF draft): per merchant, replay, reuse, in flight."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from app.errors import AppError
from app.idempotency.repository import StoredKey

MAX_KEY_LENGTH = 255
# What require_key accepts, for the document: printable ASCII, no blanks at either end (HTTP
# strips them anyway).
KEY_PATTERN = rf"^[!-~](?:[ -~]{{0,{MAX_KEY_LENGTH - 2}}}[!-~])?$"


class IdempotencyKeyRequired(AppError):
    status, code, title = 400, "IDEMPOTENCY_KEY_REQUIRED", "Idempotency-Key header required"


class IdempotencyKeyInvalid(AppError):
    status, code, title = 400, "IDEMPOTENCY_KEY_INVALID", "Invalid Idempotency-Key"


class IdempotencyKeyReused(AppError):
    status, code, title = 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key reused"


class IdempotencyKeyInUse(AppError):
    status, code, title = 409, "IDEMPOTENCY_KEY_IN_USE", "Idempotency-Key in use"


@dataclass(frozen=True)
class Replay:
    """The stored answer of an earlier request with the same key and body."""

    status: int
    body: dict[str, Any]


def require_key(raw: str | None) -> str:
    """The header's key, or a clear 400 when it is missing or unusable."""
    if raw is None or not raw.strip():
        raise IdempotencyKeyRequired("send a unique Idempotency-Key header with each withdrawal")
    if len(raw) > MAX_KEY_LENGTH or not (raw.isascii() and raw.isprintable()):
        raise IdempotencyKeyInvalid(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters"
        )
    return raw


def key_parameter(*, required: bool, description: str) -> dict[str, Any]:
    """The Idempotency-Key header as the document shows it. Routes read the header themselves
    (not as a FastAPI parameter), so that a missing key stays 400 IDEMPOTENCY_KEY_REQUIRED
    rather than a 422 validation error."""
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": required,
        "description": description,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": KEY_PATTERN,
        },
    }


def fingerprint(body: dict[str, Any]) -> str:
    """A hash of the parsed request, so "10" and "10.00" count as the same body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay_or_raise(stored: StoredKey | None, *, request_hash: str) -> Replay:
    """What a request gets when its key was already claimed: the stored answer, or an error."""
    if stored is None:
        # The other claim was rolled back between our INSERT and SELECT; ask the client to retry.
        raise IdempotencyKeyInUse("the first request with this key has just ended; retry")
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused("this key was used with a different request body")
    if stored.response_status is None or stored.response_body is None:
        raise IdempotencyKeyInUse("a request with this key is still being processed")
    return Replay(status=stored.response_status, body=stored.response_body)
