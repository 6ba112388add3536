"""The money path is batched SQLAlchemy Core in Python: drop the PL/pgSQL money functions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:00:00.000000

creditpool_reserve() and creditpool_finish() (0002, restated in 0003 and 0004) are replaced by
app/withdrawals/reserve.py and finish.py, which run one transaction per batch of withdrawals.
Downgrade restores 0004's functions.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESERVE_SIGNATURE = (
    "creditpool_reserve(bigint, varchar, varchar, numeric, varchar, uuid, uuid, jsonb, jsonb, "
    "jsonb)"
)
_FINISH_SIGNATURE = "creditpool_finish(uuid, varchar, uuid, varchar, varchar, integer, jsonb)"


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {_RESERVE_SIGNATURE}")
    op.execute(f"DROP FUNCTION IF EXISTS {_FINISH_SIGNATURE}")


def downgrade() -> None:
    path = Path(__file__).with_name("0004_money_safety.py")
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.RESERVE_FUNCTION)
    op.execute(module.FINISH_FUNCTION)
