"""Opaque cursors for keyset pagination (newest first)."""

import base64
import json
from typing import Annotated, Any

from fastapi import Query

from app.errors import AppError


class InvalidCursor(AppError):
    status, code, title = 422, "INVALID_CURSOR", "Invalid pagination cursor"


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError):
        raise InvalidCursor() from None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor()
    return values


Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the last page")]
