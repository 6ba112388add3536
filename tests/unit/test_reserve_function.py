"""The order of creditpool_reserve()'s statements: the lock order every money path keeps."""

import importlib.util
from pathlib import Path

MIGRATION = (
    Path(__file__).resolve().parents[2] / "alembic" / "versions" / "0002_reserve_function.py"
)


def _function_sql() -> str:
    spec = importlib.util.spec_from_file_location("migration_0002", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.RESERVE_FUNCTION)


def test_reserve_takes_key_then_line_then_pool_row_last() -> None:
    sql = _function_sql()
    steps = [
        "INSERT INTO idempotency_keys",
        "FOR UPDATE OF c",
        "INSERT INTO withdrawals",
        "UPDATE merchant_credits",
        "INSERT INTO ledger_entries",
        "UPDATE credit_pool",
    ]
    positions = [sql.index(step) for step in steps]
    assert positions == sorted(positions)
    # Nothing but the shortfall check comes between the pool UPDATE and the end of the writes.
    assert sql.count("UPDATE credit_pool") == 1
    assert "available >= p_amount" in sql
