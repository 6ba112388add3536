"""Rows become WithdrawalRows by column name, never by position."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import column, select

from app.withdrawals.repository import WithdrawalRow, row_columns, withdrawal_row


class _Row:
    def __init__(self, mapping: dict[str, object]) -> None:
        self._mapping = mapping


def test_a_row_is_mapped_by_name_whatever_its_column_order() -> None:
    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "merchant_id": 7,
        "account_id": uuid.uuid4(),
        "amount": Decimal("1.00"),
        "bank_account": "DE1",
        "status": "PROCESSING",
        "idempotency_key": "k",
        "bank_reference": None,
        "failure_code": None,
        "reserve_tx_id": uuid.uuid4(),
        "final_tx_id": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    reversed_order = dict(reversed(list(values.items())))
    assert withdrawal_row(_Row(reversed_order)) == WithdrawalRow(**values)  # type: ignore[arg-type]


def test_the_money_path_reads_every_field_by_its_column_name() -> None:
    names = [c.name for c in select(*row_columns()).selected_columns]  # type: ignore[attr-defined]
    assert sorted(names) == sorted(WithdrawalRow.__dataclass_fields__)
    assert column("id").name in names
