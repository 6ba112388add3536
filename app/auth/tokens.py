"""JWT access and refresh tokens (PyJWT, HS256 pinned)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from app.auth.errors import InvalidToken, TokenExpired
from app.config import Settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "typ"]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


def issue_token(settings: Settings, *, user_id: int, token_type: TokenType) -> IssuedToken:
    """A signed token for `user_id`; it carries identity only, never a role."""
    lifetime = (
        timedelta(minutes=settings.ACCESS_TOKEN_LIFETIME_MINUTES)
        if token_type == "access"
        else timedelta(days=settings.REFRESH_TOKEN_LIFETIME_DAYS)
    )
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "typ": token_type,
    }
    token = jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)
    return IssuedToken(token=token, expires_in=int(lifetime.total_seconds()))


def read_token(settings: Settings, token: str, *, expected_type: TokenType) -> int:
    """The user id of a valid token of the expected type; InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],  # pinned: "none" and every other algorithm are refused
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if claims.get("typ") != expected_type:
        raise InvalidToken(f"a {expected_type} token is required")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.isdigit():
        raise InvalidToken()
    return int(subject)
