"""Each money step of a withdrawal is one autocommit statement

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:10:00.000000

0002 made transaction 1 one function call, but the caller still wrapped it in BEGIN ... COMMIT
and, for a merchant short of credit, stored the 409 from Python before COMMIT: the pool row
stayed locked until the (CPU-starved) api process got around to sending COMMIT, and every
withdrawal queued behind it. Now:

- creditpool_reserve() finishes every outcome itself, so it runs as a single autocommit
  statement: a short line stores its 409 on the key in here, and the outcomes that used to be
  rolled back by the caller (not approved, withdrawal exists) remove the key claim instead.
  The pool row is released the moment the statement commits.
- creditpool_finish() is transaction 2 in one statement: move the withdrawal to its final
  status exactly once, write its SETTLE or RELEASE entries, store the final answer on the key,
  and, for a release, give the money back to the line and then the pool row, last.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both functions end their result with the withdrawal as it now is: these columns (w_*), in
# app.withdrawals.repository.WithdrawalRow's order, copied from the row variable v_w.
_WITHDRAWAL_COLUMNS = (
    ("id", "uuid"),
    ("merchant_id", "bigint"),
    ("account_id", "uuid"),
    ("amount", "numeric"),
    ("bank_account", "varchar"),
    ("status", "varchar"),
    ("idempotency_key", "varchar"),
    ("bank_reference", "varchar"),
    ("failure_code", "varchar"),
    ("reserve_tx_id", "uuid"),
    ("final_tx_id", "uuid"),
    ("attempts", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_W_COLUMNS = ",\n    ".join(f"w_{name} {kind}" for name, kind in _WITHDRAWAL_COLUMNS)
_W_FROM_V_W = "\n    ".join(f"w_{name} := v_w.{name};" for name, _ in _WITHDRAWAL_COLUMNS)


def _with_withdrawal_columns(sql: str) -> str:
    return sql.replace("__W_COLUMNS__", _W_COLUMNS).replace("__W_FROM_V_W__", _W_FROM_V_W)


# Outcomes (app/withdrawals/service.py reserve() turns each into its answer):
#   KEY_TAKEN            the key exists: stored_hash/status/body say replay, reuse or in use
#                        (stored_hash NULL: the other claim vanished between INSERT and SELECT)
#   NOT_APPROVED         no approved credit line; the key claim is removed
#   INSUFFICIENT_CREDIT  the key stores stored_body (the credit refusal with its figures)
#   WITHDRAWAL_EXISTS    a withdrawal outlived its key's retention; the key claim is removed
#   INSUFFICIENT_POOL    reservation undone, the key keeps p_pool_refusal_* as its outcome
#   RESERVED             the w_* columns are the new withdrawal
RESERVE_FUNCTION = _with_withdrawal_columns(
    """
CREATE FUNCTION creditpool_reserve(
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
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_line record;
    v_w withdrawals%ROWTYPE;
BEGIN
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
CREATE FUNCTION creditpool_finish(
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
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_w withdrawals%ROWTYPE;
BEGIN
    IF p_status NOT IN ('SUCCESS', 'FAILED') THEN
        RAISE EXCEPTION 'creditpool_finish: % is not a final status', p_status;
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

_RESERVE_0002_SIGNATURE = (
    "creditpool_reserve(bigint, varchar, varchar, numeric, varchar, uuid, uuid, jsonb, integer, "
    "jsonb)"
)
_RESERVE_SIGNATURE = (
    "creditpool_reserve(bigint, varchar, varchar, numeric, varchar, uuid, uuid, jsonb, jsonb, "
    "jsonb)"
)
_FINISH_SIGNATURE = "creditpool_finish(uuid, varchar, uuid, varchar, varchar, integer, jsonb)"


def _revision_0002_reserve() -> str:
    path = Path(__file__).with_name("0002_reserve_function.py")
    spec = importlib.util.spec_from_file_location("migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.RESERVE_FUNCTION)


def upgrade() -> None:
    op.execute(f"DROP FUNCTION {_RESERVE_0002_SIGNATURE}")
    op.execute(RESERVE_FUNCTION)
    op.execute(FINISH_FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_FINISH_SIGNATURE}")
    op.execute(f"DROP FUNCTION {_RESERVE_SIGNATURE}")
    op.execute(_revision_0002_reserve())
