"""The invariants of ARCHITECTURE §5, one SQL query each.

Each query returns one row per violation with a single text column, `violation`, worded so
that an operator can find the rows involved (ids and amounts). The queries read the tables
directly instead of reusing the ledger's repository: an auditor should not share the code it
checks. The checks of each withdrawal's ledger entries and of the money that left the bank
are in app/audit/money_out.py.
"""

from app.audit.check import Check
from app.audit.money_out import BANK_TRANSFERS, PAYOUTS, WITHDRAWAL_LEDGER

BOUNDS = Check(
    name="pool_and_credit_within_bounds",
    description="pool available >= 0; 0 <= utilized <= credit_limit for every merchant",
    sql="""
    SELECT 'credit_pool row id 1 is missing' AS violation
    WHERE NOT EXISTS (SELECT FROM credit_pool WHERE id = 1)
    UNION ALL
    SELECT format('credit_pool id %s: available %s is negative', id, available)
    FROM credit_pool
    WHERE available < 0
    UNION ALL
    SELECT format(
        'merchant %s: utilized %s is outside [0, credit_limit %s]',
        merchant_id, utilized_amount, credit_limit
    )
    FROM merchant_credits
    WHERE utilized_amount < 0 OR utilized_amount > credit_limit
    """,
)

BALANCED_TRANSACTIONS = Check(
    name="ledger_transactions_balance",
    description="every ledger tx_id has at least two entries and sums to zero",
    sql="""
    SELECT format(
        'tx %s: entries [%s] sum to %s',
        tx_id,
        string_agg(format('%s %s %s', kind, account, amount), ', ' ORDER BY id),
        sum(amount)
    ) AS violation
    FROM ledger_entries
    GROUP BY tx_id
    HAVING sum(amount) <> 0 OR count(*) < 2
    """,
)

# The pool is summed over its rows so that a stray second row (or a future striped pool)
# is compared with the ledger too, instead of being ignored.
LEDGER_BALANCES = Check(
    name="ledger_matches_pool_and_withdrawals",
    description=(
        "ledger POOL == credit_pool.available; IN_FLIGHT == QUEUED+PROCESSING withdrawals; "
        "PAID_OUT == SUCCESS withdrawals; FUNDING == minus all top-ups"
    ),
    sql="""
    WITH ledger AS (
        SELECT
            coalesce(sum(amount) FILTER (WHERE account = 'POOL'), 0.00) AS pool,
            coalesce(sum(amount) FILTER (WHERE account = 'IN_FLIGHT'), 0.00) AS in_flight,
            coalesce(sum(amount) FILTER (WHERE account = 'PAID_OUT'), 0.00) AS paid_out,
            coalesce(sum(amount) FILTER (WHERE account = 'FUNDING'), 0.00) AS funding,
            coalesce(sum(amount) FILTER (WHERE account = 'POOL' AND kind = 'TOPUP'), 0.00)
                AS topups
        FROM ledger_entries
    ),
    state AS (
        SELECT
            (SELECT sum(available) FROM credit_pool) AS pool,
            coalesce(sum(amount) FILTER (WHERE status IN ('QUEUED', 'PROCESSING')), 0.00)
                AS in_flight,
            coalesce(sum(amount) FILTER (WHERE status = 'SUCCESS'), 0.00) AS paid_out
        FROM withdrawals
    )
    SELECT format(
        '%s ledger balance %s != %s %s',
        c.account, c.balance, c.source, coalesce(c.expected::text, '(missing)')
    ) AS violation
    FROM ledger AS l
    CROSS JOIN state AS s
    CROSS JOIN LATERAL (
        VALUES
            ('POOL', l.pool, 'credit_pool.available', s.pool),
            ('IN_FLIGHT', l.in_flight, 'QUEUED+PROCESSING withdrawals', s.in_flight),
            ('PAID_OUT', l.paid_out, 'SUCCESS withdrawals', s.paid_out),
            ('FUNDING', l.funding, 'minus TOPUP credits to POOL', 0 - l.topups)
    ) AS c (account, balance, source, expected)
    WHERE c.balance IS DISTINCT FROM c.expected
    """,
)

MERCHANT_UTILIZED = Check(
    name="merchant_utilized_matches_withdrawals",
    description="every merchant's utilized == its QUEUED+PROCESSING+SUCCESS withdrawals",
    sql="""
    WITH committed AS (
        SELECT merchant_id, sum(amount) AS amount
        FROM withdrawals
        WHERE status IN ('QUEUED', 'PROCESSING', 'SUCCESS')
        GROUP BY merchant_id
    )
    SELECT format(
        'merchant %s: utilized %s != QUEUED+PROCESSING+SUCCESS withdrawals %s',
        coalesce(c.merchant_id, w.merchant_id),
        coalesce(c.utilized_amount::text, '(no credit line)'),
        coalesce(w.amount, 0.00)
    ) AS violation
    FROM merchant_credits AS c
    FULL JOIN committed AS w ON w.merchant_id = c.merchant_id
    WHERE c.utilized_amount IS DISTINCT FROM coalesce(w.amount, 0.00)
    """,
)

# The unique constraint enforces this; the audit still checks it in case the constraint is
# ever dropped or the table rebuilt without it.
IDEMPOTENCY_KEYS = Check(
    name="withdrawal_idempotency_keys_unique",
    description="no two withdrawals share (merchant_id, idempotency_key)",
    sql="""
    SELECT format(
        'merchant %s, key %L: %s withdrawals [%s]',
        merchant_id,
        idempotency_key,
        count(*),
        string_agg(format('%s %s %s', id, status, amount), ', ' ORDER BY created_at, id)
    ) AS violation
    FROM withdrawals
    GROUP BY merchant_id, idempotency_key
    HAVING count(*) > 1
    """,
)

CHECKS: tuple[Check, ...] = (
    BOUNDS,
    BALANCED_TRANSACTIONS,
    LEDGER_BALANCES,
    MERCHANT_UTILIZED,
    WITHDRAWAL_LEDGER,
    BANK_TRANSFERS,
    PAYOUTS,
    IDEMPOTENCY_KEYS,
)

# Re-exported, so that every check can be named as checks.NAME.
__all__ = ["BANK_TRANSFERS", "CHECKS", "PAYOUTS", "WITHDRAWAL_LEDGER", "Check"]
