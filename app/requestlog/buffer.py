"""The request log's way off the hot path: a bounded in-memory buffer and a batch writer.

A request only appends a row to a deque (no I/O). One background task per process writes
whatever has gathered as one COPY per batch, every REQUEST_LOG_FLUSH_INTERVAL_S or as soon as
a batch is full, and drains the buffer on shutdown. When the database is slower than the
traffic the buffer fills up and new rows are dropped and counted, never queued without bound.
"""

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability.metrics import REQUEST_LOG_DROPPED, REQUEST_LOG_WRITTEN
from app.requestlog import repository

logger = logging.getLogger("app.requestlog")

# Shutdown waits this long for the last rows; a database that is down must not hang it.
DRAIN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class RequestLogRow:
    """What is kept of one request: never a header value, a body, a password or a token."""

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
    withdrawal_id: uuid.UUID | None


class RequestLogBuffer:
    """Rows waiting to be written; holds at most `max_rows`, drops (and counts) the rest."""

    def __init__(self, *, service: str, max_rows: int, batch_rows: int) -> None:
        self.service = service  # the metrics' label: each app in a process counts its own rows
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self._rows: deque[RequestLogRow] = deque()
        self.batch_ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: RequestLogRow) -> None:
        if len(self._rows) >= self.max_rows:
            REQUEST_LOG_DROPPED.labels(self.service, "buffer_full").inc()
            return
        self._rows.append(row)
        if len(self._rows) >= self.batch_rows:
            self.batch_ready.set()

    def take_batch(self) -> list[RequestLogRow]:
        count = min(self.batch_rows, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]


async def flush(buffer: RequestLogBuffer, engine: AsyncEngine) -> int:
    """Write everything buffered now, a batch at a time; returns the rows written."""
    written = 0
    while batch := buffer.take_batch():
        try:
            await repository.copy_rows(engine, batch)
        except Exception as exc:  # the log must never take a request or the writer down
            REQUEST_LOG_DROPPED.labels(buffer.service, "write_failed").inc(len(batch))
            logger.warning("request log batch of %s rows lost: %r", len(batch), exc)
            return written
        REQUEST_LOG_WRITTEN.labels(buffer.service).inc(len(batch))
        written += len(batch)
    return written


async def _write_until_stopped(
    buffer: RequestLogBuffer, engine: AsyncEngine, *, interval_s: float, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(buffer.batch_ready.wait(), interval_s)
        buffer.batch_ready.clear()
        await flush(buffer, engine)
    await flush(buffer, engine)


@asynccontextmanager
async def request_log_writer(
    buffer: RequestLogBuffer, engine: AsyncEngine, *, interval_s: float
) -> AsyncIterator[None]:
    """Run the batch writer for the app's lifetime; drain the buffer when it ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        _write_until_stopped(buffer, engine, interval_s=interval_s, stop=stop),
        name="request-log-writer",
    )
    try:
        yield
    finally:
        stop.set()
        buffer.batch_ready.set()
        with suppress(TimeoutError):
            await asyncio.wait_for(task, DRAIN_TIMEOUT_S)
        if len(buffer):  # the database was too slow or down for the last rows
            REQUEST_LOG_DROPPED.labels(buffer.service, "shutdown").inc(len(buffer))
            logger.warning("request log: %s rows not written at shutdown", len(buffer))
