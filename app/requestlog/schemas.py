from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class RequestLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    service: str
    method: str
    path: str
    status: int
    duration_ms: float
    actor: str | None
    request_id: str | None
    client_addr: str | None
    idempotency_key: str | None
    withdrawal_id: UUID | None


class RequestLogPage(BaseModel):
    items: list[RequestLogOut]
    next_cursor: str | None
