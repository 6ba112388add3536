import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ApiRequestLog(Base):
    """One row per request to either app; never a password, token or body.

    Partitioned by UTC day (migration 0008; app/requestlog/partitions.py keeps the days).
    """

    __tablename__ = "api_request_log"
    __table_args__ = (
        Index("ix_api_request_log_created_at", "created_at"),
        Index("ix_api_request_log_actor_created", "actor", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(80))
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
