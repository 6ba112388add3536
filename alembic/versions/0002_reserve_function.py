"""creditpool_reserve(): transaction 1 of a withdrawal in one round trip

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:10:00.000000

Every statement of the reservation used to be its own round trip, and between them the
transaction sat idle while its (CPU-starved) api process prepared the next one; the pool row,
taken last, was then held across the trip to COMMIT plus any Python in between. One function
call does the same statements, in the same order, inside PostgreSQL.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes (the Python caller, app/withdrawals/service.py reserve(), turns each into its answer):
#   KEY_TAKEN            the key exists: stored_hash/status/body say replay, reuse or in use
#                        (stored_hash NULL: the other claim vanished between INSERT and SELECT)
#   NOT_APPROVED         no approved credit line; the caller raises and rolls back
#   INSUFFICIENT_CREDIT  available_credit is the headroom; the caller stores the 409 on the key
#   WITHDRAWAL_EXISTS    a withdrawal outlived its key's retention; the caller rolls back
#   INSUFFICIENT_POOL    reservation undone, the key keeps p_pool_refusal_* as its outcome
#   RESERVED             the w_* columns are the new withdrawal
RESERVE_FUNCTION = """
CREATE FUNCTION creditpool_reserve(
    p_merchant_id bigint,
    p_key varchar,
    p_request_hash varchar,
    p_amount numeric,
    p_status varchar,
    p_withdrawal_id uuid,
    p_reserve_tx_id uuid,
    p_pending_body jsonb,
    p_pool_refusal_status integer,
    p_pool_refusal_body jsonb
) RETURNS TABLE (
    outcome text,
    available_credit numeric,
    stored_hash varchar,
    stored_status integer,
    stored_body jsonb,
    w_id uuid,
    w_merchant_id bigint,
    w_account_id uuid,
    w_amount numeric,
    w_bank_account varchar,
    w_status varchar,
    w_idempotency_key varchar,
    w_bank_reference varchar,
    w_failure_code varchar,
    w_reserve_tx_id uuid,
    w_final_tx_id uuid,
    w_attempts integer,
    w_created_at timestamptz,
    w_updated_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_line record;
    v_w withdrawals%ROWTYPE;
BEGIN
    -- Lock 1: the key. A concurrent claim of the same key waits here until the other
    -- transaction ends, then sees its row (or claims the key if that one rolled back).
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
        outcome := 'NOT_APPROVED';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_line.available < p_amount THEN
        outcome := 'INSUFFICIENT_CREDIT';
        available_credit := v_line.available;
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
        -- Lock 3, last: the pool row, held from this UPDATE to COMMIT only. The condition
        -- checks and takes the lock in one step; no row updated means the pool is short.
        UPDATE credit_pool SET available = available - p_amount, updated_at = now()
         WHERE id = 1 AND available >= p_amount;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the credit pool cannot cover %', p_amount USING ERRCODE = 'CP001';
        END IF;
    EXCEPTION WHEN SQLSTATE 'CP001' THEN
        UPDATE idempotency_keys
           SET response_status = p_pool_refusal_status, response_body = p_pool_refusal_body,
               completed_at = now()
         WHERE merchant_id = p_merchant_id AND key = p_key;
        outcome := 'INSUFFICIENT_POOL';
        RETURN NEXT;
        RETURN;
    END;

    outcome := 'RESERVED';
    w_id := v_w.id;
    w_merchant_id := v_w.merchant_id;
    w_account_id := v_w.account_id;
    w_amount := v_w.amount;
    w_bank_account := v_w.bank_account;
    w_status := v_w.status;
    w_idempotency_key := v_w.idempotency_key;
    w_bank_reference := v_w.bank_reference;
    w_failure_code := v_w.failure_code;
    w_reserve_tx_id := v_w.reserve_tx_id;
    w_final_tx_id := v_w.final_tx_id;
    w_attempts := v_w.attempts;
    w_created_at := v_w.created_at;
    w_updated_at := v_w.updated_at;
    RETURN NEXT;
END $$;
"""


def upgrade() -> None:
    op.execute(RESERVE_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION creditpool_reserve(bigint, varchar, varchar, numeric, varchar, uuid, uuid, "
        "jsonb, integer, jsonb)"
    )
