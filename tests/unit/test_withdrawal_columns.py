"""The money path's raw SQL names a withdrawal's columns in WithdrawalRow's field order."""

import importlib.util
import re
from pathlib import Path

from app.withdrawals import statements
from app.withdrawals.repository import WithdrawalRow

FIELDS = list(WithdrawalRow.__dataclass_fields__)
MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "alembic"
    / "versions"
    / "0003_one_statement_money_steps.py"
)


def _names(sql: str) -> list[str]:
    return [name.strip() for name in sql.split(",")]


def test_statements_return_the_columns_in_field_order() -> None:
    returning = statements._START_PROCESSING.split("RETURNING", 1)[1]
    assert _names(returning) == FIELDS
    selected = re.search(r"SELECT(.*)FROM", statements._OPEN_OLDER_THAN, re.S)
    assert selected is not None
    assert _names(selected.group(1)) == FIELDS


def test_the_functions_end_with_the_columns_in_field_order() -> None:
    spec = importlib.util.spec_from_file_location("migration_0003", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for sql in (module.RESERVE_FUNCTION, module.FINISH_FUNCTION):
        declared = re.search(r"RETURNS TABLE \((.*?)\) LANGUAGE", sql, re.S)
        assert declared is not None
        columns = [line.split()[0] for line in _names(declared.group(1))]
        withdrawal = [name.removeprefix("w_") for name in columns if name.startswith("w_")]
        assert withdrawal == FIELDS
        assert columns[-len(FIELDS) :] == [f"w_{name}" for name in FIELDS]
