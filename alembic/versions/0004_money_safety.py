"""Money safety: one ledger entry per withdrawal, kind and account; payout leases; the money
functions check their own inputs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:30:00.000000

- ledger_entries gets a unique index on (withdrawal_id, kind, account): a withdrawal can be
  reserved, settled or released once, whatever a bug in a caller does.
- settlement_payouts.lease_until: a PENDING payout whose bank call is under way is leased, so
  a concurrent duplicate answers PENDING instead of calling the bank again (an expired lease,
  left by a crash, may be taken by a later request).
- creditpool_reserve() and creditpool_finish() are restated (same signatures and results as
  0003): they refuse arguments that would move money wrongly (an unknown status, an amount
  that is not positive with two places, a missing id) with SQLSTATE 22023, and pin
  search_path so that a caller's search_path cannot swap a table under them.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_0003() -> ModuleType:
    path = Path(__file__).with_name("0003_one_statement_money_steps.py")
    spec = importlib.util.spec_from_file_location("migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The w_* result columns are 0003's, unchanged (the functions keep their results).
_with_withdrawal_columns = _revision_0003()._with_withdrawal_columns

RESERVE_FUNCTION = _with_withdrawal_columns(
    """
CREATE OR REPLACE FUNCTION creditpool_reserve(
    p_merchant_id bigint,
    p_key varchar,
    p_request_hash varchar,
    p_amount numeric,
    p_status varchar,
    p_withdrawal_id uuid,
    p_reserve_tx_id uuid,
    p_pending_body jsonb,
    p_credit_refusal_body jsonb,
    p_pool_refusal_body jsonb
) RETURNS TABLE (
    outcome text,
    available_credit numeric,
    stored_hash varchar,
    stored_status integer,
    stored_body jsonb,
    __W_COLUMNS__
) LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_line record;
    v_w withdrawals%ROWTYPE;
BEGIN
    -- The caller's checks are not the function's: a bad argument moves no money.
    IF p_merchant_id IS NULL OR p_key IS NULL OR p_request_hash IS NULL
       OR p_withdrawal_id IS NULL OR p_reserve_tx_id IS NULL THEN
        RAISE EXCEPTION 'creditpool_reserve: merchant, key, hash and ids are required'
            USING ERRCODE = '22023';
    END IF;
    IF p_status IS NULL OR p_status NOT IN ('QUEUED', 'PROCESSING') THEN
        RAISE EXCEPTION 'creditpool_reserve: % is not an open status', p_status
            USING ERRCODE = '22023';
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount <> round(p_amount, 2) THEN
        RAISE EXCEPTION 'creditpool_reserve: % is not a positive amount with two places',
            p_amount USING ERRCODE = '22023';
    END IF;
    -- Lock 1: the key. A concurrent claim of the same key waits here until the other
    -- statement commits, then sees its row (or claims the key if that one removed its claim).
    INSERT INTO idempotency_keys (merchant_id, key, request_hash)
    VALUES (p_merchant_id, p_key, p_request_hash)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- A fresh snapshot (volatile function, read committed) sees the row that won.
        outcome := 'KEY_TAKEN';
        SELECT k.request_hash, k.response_status, k.response_body
          INTO stored_hash, stored_status, stored_body
          FROM idempotency_keys k
         WHERE k.merchant_id = p_merchant_id AND k.key = p_key;
        RETURN NEXT;
        RETURN;
    END IF;

    -- Lock 2: the merchant's line. Concurrent withdrawals of one merchant queue here.
    SELECT m.status, m.bank_account, a.id AS account_id,
           c.credit_limit - c.utilized_amount AS available
      INTO v_line
      FROM merchant_credits c
      JOIN merchants m ON m.id = c.merchant_id
      JOIN wallet_accounts a ON a.merchant_id = c.merchant_id
     WHERE c.merchant_id = p_merchant_id
       FOR UPDATE OF c;
    IF NOT FOUND OR v_line.status <> 'APPROVED' THEN
        -- Nothing was decided: the key stays free for a retry once the merchant is approved.
        DELETE FROM idempotency_keys WHERE merchant_id = p_merchant_id AND key = p_key;
        outcome := 'NOT_APPROVED';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_line.available < p_amount THEN
        -- A final outcome: replays of the key get this 409 with the headroom seen here.
        outcome := 'INSUFFICIENT_CREDIT';
        available_credit := v_line.available;
        stored_status := 409;
        stored_body := p_credit_refusal_body || jsonb_build_object(
            'detail', 'available credit is ' || v_line.available::text,
            'available_credit', v_line.available::text);
        UPDATE idempotency_keys
           SET response_status = stored_status, response_body = stored_body,
               completed_at = now()
         WHERE merchant_id = p_merchant_id AND key = p_key;
        RETURN NEXT;
        RETURN;
    END IF;

    -- A subtransaction, so that a short pool undoes the reservation's writes but the key
    -- (claimed above) keeps the refusal as its final outcome, atomically.
    BEGIN
        INSERT INTO withdrawals (id, merchant_id, account_id, amount, bank_account, status,
                                 idempotency_key, reserve_tx_id)
        VALUES (p_withdrawal_id, p_merchant_id, v_line.account_id, p_amount,
                v_line.bank_account, p_status, p_key, p_reserve_tx_id)
        ON CONFLICT DO NOTHING
        RETURNING * INTO v_w;
        IF NOT FOUND THEN
            DELETE FROM idempotency_keys WHERE merchant_id = p_merchant_id AND key = p_key;
            outcome := 'WITHDRAWAL_EXISTS';
            RETURN NEXT;
            RETURN;
        END IF;
        -- The CHECK (0 <= utilized <= limit) is the last guard if the arithmetic were wrong.
        UPDATE merchant_credits SET utilized_amount = utilized_amount + p_amount
         WHERE merchant_id = p_merchant_id;
        INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)
        VALUES (p_reserve_tx_id, 'RESERVE', 'POOL', -p_amount, p_withdrawal_id),
               (p_reserve_tx_id, 'RESERVE', 'IN_FLIGHT', p_amount, p_withdrawal_id);
        IF p_pending_body IS NOT NULL THEN
            -- Async mode: replays get the 202 until the worker stores the outcome.
            UPDATE idempotency_keys
               SET response_status = 202, response_body = p_pending_body,
                   completed_at = now(), withdrawal_id = p_withdrawal_id
             WHERE merchant_id = p_merchant_id AND key = p_key AND response_status IS NULL;
        END IF;
        -- Lock 3, last: the pool row, held from this UPDATE to the statement's commit only.
        -- The condition checks and takes the lock in one step; no row means the pool is short.
        UPDATE credit_pool SET available = available - p_amount, updated_at = now()
         WHERE id = 1 AND available >= p_amount;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the credit pool cannot cover %', p_amount USING ERRCODE = 'CP001';
        END IF;
    EXCEPTION WHEN SQLSTATE 'CP001' THEN
        UPDATE idempotency_keys
           SET response_status = 409, response_body = p_pool_refusal_body,
               completed_at = now()
         WHERE merchant_id = p_merchant_id AND key = p_key;
        outcome := 'INSUFFICIENT_POOL';
        RETURN NEXT;
        RETURN;
    END;

    outcome := 'RESERVED';
    __W_FROM_V_W__
    RETURN NEXT;
END $$;
"""
)

# finished = true: this call moved the withdrawal to p_status and wrote everything that goes
# with it; false: it was already final (a request, a worker or the reconciler got there first)
# and nothing changed. Either way the w_* columns are the withdrawal as it now is.
FINISH_FUNCTION = _with_withdrawal_columns(
    """
CREATE OR REPLACE FUNCTION creditpool_finish(
    p_withdrawal_id uuid,
    p_status varchar,
    p_final_tx_id uuid,
    p_bank_reference varchar,
    p_failure_code varchar,
    p_response_status integer,
    p_response_body jsonb
) RETURNS TABLE (
    finished boolean,
    __W_COLUMNS__
) LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_w withdrawals%ROWTYPE;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('SUCCESS', 'FAILED') THEN
        RAISE EXCEPTION 'creditpool_finish: % is not a final status', p_status
            USING ERRCODE = '22023';
    END IF;
    IF p_withdrawal_id IS NULL OR p_final_tx_id IS NULL OR p_response_status IS NULL
       OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'creditpool_finish: withdrawal, tx id and answer are required'
            USING ERRCODE = '22023';
    END IF;
    -- A payout is SUCCESS only with the bank's reference, FAILED only with its reason.
    IF (p_status = 'SUCCESS' AND (p_bank_reference IS NULL OR p_failure_code IS NOT NULL))
       OR (p_status = 'FAILED' AND (p_failure_code IS NULL OR p_bank_reference IS NOT NULL)) THEN
        RAISE EXCEPTION 'creditpool_finish: % needs its bank reference or failure code only',
            p_status USING ERRCODE = '22023';
    END IF;
    -- Lock 1: the withdrawal. The status condition makes finishing happen exactly once when a
    -- request, a worker and the reconciler race; the row lock serialises them.
    UPDATE withdrawals
       SET status = p_status, final_tx_id = p_final_tx_id, bank_reference = p_bank_reference,
           failure_code = p_failure_code, updated_at = now()
     WHERE id = p_withdrawal_id AND status IN ('QUEUED', 'PROCESSING')
    RETURNING * INTO v_w;
    finished := FOUND;
    IF NOT finished THEN
        SELECT * INTO v_w FROM withdrawals WHERE id = p_withdrawal_id;
    ELSE
        -- Lock 2: the key, whose replays now get the final answer.
        UPDATE idempotency_keys
           SET response_status = p_response_status, response_body = p_response_body,
               completed_at = now(), withdrawal_id = v_w.id
         WHERE merchant_id = v_w.merchant_id AND key = v_w.idempotency_key;
        IF p_status = 'SUCCESS' THEN
            INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)
            VALUES (p_final_tx_id, 'SETTLE', 'IN_FLIGHT', -v_w.amount, v_w.id),
                   (p_final_tx_id, 'SETTLE', 'PAID_OUT', v_w.amount, v_w.id);
        ELSE
            -- Lock 3: the merchant's line, then lock 4, last: the pool row.
            UPDATE merchant_credits SET utilized_amount = utilized_amount - v_w.amount
             WHERE merchant_id = v_w.merchant_id;
            INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)
            VALUES (p_final_tx_id, 'RELEASE', 'IN_FLIGHT', -v_w.amount, v_w.id),
                   (p_final_tx_id, 'RELEASE', 'POOL', v_w.amount, v_w.id);
            UPDATE credit_pool SET available = available + v_w.amount, updated_at = now()
             WHERE id = 1;
        END IF;
    END IF;
    __W_FROM_V_W__
    RETURN NEXT;
END $$;
"""
)


_RESERVE_SIGNATURE = (
    "creditpool_reserve(bigint, varchar, varchar, numeric, varchar, uuid, uuid, jsonb, jsonb, "
    "jsonb)"
)
_FINISH_SIGNATURE = "creditpool_finish(uuid, varchar, uuid, varchar, varchar, integer, jsonb)"
_LEDGER_INDEX = "ux_ledger_entries_withdrawal_kind_account"


def upgrade() -> None:
    op.create_index(
        _LEDGER_INDEX, "ledger_entries", ["withdrawal_id", "kind", "account"], unique=True
    )
    op.add_column(
        "settlement_payouts", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(RESERVE_FUNCTION)
    op.execute(FINISH_FUNCTION)


def downgrade() -> None:
    previous = _revision_0003()
    op.execute(f"DROP FUNCTION {_FINISH_SIGNATURE}")
    op.execute(f"DROP FUNCTION {_RESERVE_SIGNATURE}")
    op.execute(previous.RESERVE_FUNCTION)
    op.execute(previous.FINISH_FUNCTION)
    op.drop_column("settlement_payouts", "lease_until")
    op.drop_index(_LEDGER_INDEX, table_name="ledger_entries")
