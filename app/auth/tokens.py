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
# ver: the user's token_version when issued (a password change or suspension raises it).
# mid (access tokens of merchants): the user's merchant id, which never changes; the withdrawal
# path needs no lookup to know whose line and keys a request names (the token's version and
# the merchant's status are still checked in the reservation's transaction).
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "typ", "ver"]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    jti: str


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int
    jti: str
    family: uuid.UUID | None  # refresh tokens only: the login they descend from
    merchant_id: int | None = None  # access tokens of merchants


@dataclass(frozen=True)
class TokenHolder:
    """Who sent a request, by its access token, for checks made later in the request's own
    transaction: the version is still the user's, the merchant is the user's and approved."""

    user_id: int
    token_version: int


def issue_token(
    settings: Settings,
    *,
    user_id: int,
    version: int,
    token_type: TokenType,
    family: uuid.UUID | None = None,
    merchant_id: int | None = None,
) -> IssuedToken:
    """A signed token for `user_id`; it carries identity only, never a role."""
    lifetime = (
        timedelta(minutes=settings.ACCESS_TOKEN_LIFETIME_MINUTES)
        if token_type == "access"
        else timedelta(days=settings.REFRESH_TOKEN_LIFETIME_DAYS)
    )
    now = datetime.now(UTC)
    jti = uuid.uuid4().hex
    claims: dict[str, object] = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
        "typ": token_type,
        "ver": version,
    }
    if family is not None:
        claims["fam"] = str(family)
    if merchant_id is not None and token_type == "access":
        claims["mid"] = merchant_id
    token = jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)
    return IssuedToken(token=token, expires_in=int(lifetime.total_seconds()), jti=jti)


def read_token(settings: Settings, token: str, *, expected_type: TokenType) -> TokenClaims:
    """The claims of a valid token of the expected type; InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],  # pinned: "none" and every other algorithm are refused
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if claims.get("typ") != expected_type:
        raise InvalidToken(f"a {expected_type} token is required")
    subject, version, jti = claims.get("sub"), claims.get("ver"), claims.get("jti")
    if not isinstance(subject, str) or not subject.isdigit():
        raise InvalidToken()
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(jti, str):
        raise InvalidToken()
    family = None
    if expected_type == "refresh":
        try:
            family = uuid.UUID(str(claims.get("fam")))
        except ValueError:
            raise InvalidToken() from None
    merchant_id = claims.get("mid")
    if merchant_id is not None and (type(merchant_id) is not int):
        raise InvalidToken()
    return TokenClaims(
        user_id=int(subject), version=version, jti=jti, family=family, merchant_id=merchant_id
    )
