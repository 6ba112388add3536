"""Who may call settlement (only the core, by its internal token), and its database.

All async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request for
what is only an attribute lookup.
"""

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.settlement.errors import InternalTokenInvalid, InternalTokenMissing


async def require_internal_token(
    request: Request,
    x_internal_token: Annotated[str | None, Header(description="the core's shared secret")] = None,
) -> None:
    """Let through only requests that carry the core's internal token."""
    if not x_internal_token:
        raise InternalTokenMissing("the X-Internal-Token header is required")
    settings: Settings = request.app.state.settings
    if not _is_core_token(x_internal_token, settings):
        raise InternalTokenInvalid("the X-Internal-Token header is not the core's token")
    request.state.actor = "internal:core"


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _is_core_token(token: str, settings: Settings) -> bool:
    """The current token, or during a rotation the previous one (README "Operations")."""
    accepted = [settings.INTERNAL_TOKEN]
    if settings.INTERNAL_TOKEN_PREVIOUS:
        accepted.append(settings.INTERNAL_TOKEN_PREVIOUS)
    # Constant time, on bytes (str comparison would raise on non-ASCII header text); every
    # candidate is compared, so the time does not tell which one matched.
    matches = [hmac.compare_digest(token.encode(), candidate.encode()) for candidate in accepted]
    return any(matches)


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
