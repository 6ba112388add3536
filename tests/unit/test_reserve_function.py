"""The order of the money functions' statements: the lock order every money path keeps."""

import importlib.util
import re
from pathlib import Path

from app.ledger.service import WITHDRAWAL_MOVES

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "alembic"
    / "versions"
    / "0003_one_statement_money_steps.py"
)


def _migration() -> object:
    spec = importlib.util.spec_from_file_location("migration_0003", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _in_order(sql: str, steps: list[str]) -> bool:
    positions = [sql.index(step) for step in steps]
    return positions == sorted(positions)


def test_reserve_takes_key_then_line_then_pool_row_last() -> None:
    sql = str(_migration().RESERVE_FUNCTION)  # type: ignore[attr-defined]
    assert _in_order(
        sql,
        [
            "INSERT INTO idempotency_keys",
            "FOR UPDATE OF c",
            "INSERT INTO withdrawals",
            "UPDATE merchant_credits",
            "INSERT INTO ledger_entries",
            "UPDATE credit_pool",
        ],
    )
    # Nothing but the shortfall check comes between the pool UPDATE and the end of the writes.
    assert sql.count("UPDATE credit_pool") == 1
    assert "available >= p_amount" in sql


def test_finish_takes_withdrawal_then_key_then_line_then_pool_row_last() -> None:
    sql = str(_migration().FINISH_FUNCTION)  # type: ignore[attr-defined]
    assert _in_order(
        sql,
        [
            "UPDATE withdrawals",
            "UPDATE idempotency_keys",
            "UPDATE merchant_credits",
            "'RELEASE', 'POOL'",
            "UPDATE credit_pool",
        ],
    )
    # Exactly once: only an open withdrawal moves to its final status.
    assert "status IN ('QUEUED', 'PROCESSING')" in sql


def test_the_functions_move_money_the_way_the_ledger_table_says() -> None:
    module = _migration()
    sql = str(module.RESERVE_FUNCTION) + str(module.FINISH_FUNCTION)  # type: ignore[attr-defined]
    for kind, (debit, credit) in WITHDRAWAL_MOVES.items():
        # The debit leg is negative, the credit leg positive, and no other account is used.
        assert re.search(rf"'{kind}', '{debit}', -", sql), kind
        assert re.search(rf"'{kind}', '{credit}', [^-]", sql), kind
        assert len(re.findall(rf"'{kind}', '[A-Z_]+',", sql)) == 2, kind
