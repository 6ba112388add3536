"""pool_topups: every top-up recorded, at most once per Idempotency-Key and per reference

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:30:00.000000

A top-up retried after a lost answer used to fund the pool twice. Each top-up now claims its
row here first (the unique key and reference serialise concurrent duplicates), in the same
transaction as its ledger entries and the pool row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pool_topups",
        sa.Column("tx_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("pool_available", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_pool_topups_amount_positive")),
        sa.PrimaryKeyConstraint("tx_id", name=op.f("pk_pool_topups")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_pool_topups_idempotency_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_pool_topups_reference")),
    )


def downgrade() -> None:
    op.drop_table("pool_topups")
