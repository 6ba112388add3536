import uuid
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from app.requestlog.buffer import RequestLogBuffer, RequestLogRow


def _row() -> RequestLogRow:
    return RequestLogRow(
        created_at=datetime.now(UTC),
        service="api",
        method="GET",
        path="/healthz",
        status=200,
        duration_ms=1.0,
        actor=None,
        request_id=uuid.uuid4().hex,
        client_addr="127.0.0.1",
        idempotency_key=None,
        withdrawal_id=None,
    )


def _dropped() -> float:
    value = REGISTRY.get_sample_value(
        "creditpool_request_log_dropped_rows_total", {"service": "unit", "reason": "buffer_full"}
    )
    return value or 0.0


def test_a_full_buffer_keeps_the_oldest_rows_and_counts_the_dropped() -> None:
    buffer = RequestLogBuffer(service="unit", max_rows=3, batch_rows=10)
    rows = [_row() for _ in range(5)]
    before = _dropped()
    for row in rows:
        buffer.add(row)
    assert len(buffer) == 3
    assert _dropped() == before + 2
    assert buffer.take_batch() == rows[:3]


def test_batches_are_bounded_and_a_full_batch_wakes_the_writer() -> None:
    buffer = RequestLogBuffer(service="unit", max_rows=100, batch_rows=2)
    buffer.add(_row())
    assert not buffer.batch_ready.is_set()
    buffer.add(_row())
    buffer.add(_row())
    assert buffer.batch_ready.is_set()
    assert [len(buffer.take_batch()) for _ in range(3)] == [2, 1, 0]
