"""The checks of ARCHITECTURE §5 invariants 5 and 6: what each withdrawal's ledger entries
must be, and the money that left the bank (`settlement_bank_transfers`, the bank's own book,
keyed by the withdrawal id it was paid for).

A PROCESSING withdrawal the bank already paid (for its amount, to its account) is legal: the
core has not heard the outcome yet. It is reported as "to reconcile", not as a violation, and
`python -m app reconcile` finishes it.
"""

from app.audit.check import Check

# Expected legs per withdrawal: a RESERVE always, a SETTLE iff SUCCESS, a RELEASE iff FAILED,
# each for the withdrawal's amount. Written out here rather than read from app.ledger: an
# auditor does not share the code it checks.
WITHDRAWAL_LEDGER = Check(
    name="withdrawal_ledger_entries",
    description="per withdrawal: one RESERVE, one SETTLE iff SUCCESS, one RELEASE iff FAILED, "
    "each of its amount",
    sql="""
    WITH expected AS (
        SELECT w.id AS withdrawal_id, w.merchant_id, w.status, m.kind, m.account,
               m.sign * w.amount AS amount
        FROM withdrawals AS w
        CROSS JOIN (
            VALUES ('RESERVE', 'POOL', -1), ('RESERVE', 'IN_FLIGHT', 1),
                   ('SETTLE', 'IN_FLIGHT', -1), ('SETTLE', 'PAID_OUT', 1),
                   ('RELEASE', 'IN_FLIGHT', -1), ('RELEASE', 'POOL', 1)
        ) AS m (kind, account, sign)
        WHERE m.kind = 'RESERVE'
            OR (m.kind = 'SETTLE' AND w.status = 'SUCCESS')
            OR (m.kind = 'RELEASE' AND w.status = 'FAILED')
    ),
    actual AS (
        SELECT withdrawal_id, kind, account, count(*) AS entries,
               string_agg(amount::text, ', ' ORDER BY id) AS amounts, sum(amount) AS amount
        FROM ledger_entries
        WHERE withdrawal_id IS NOT NULL
        GROUP BY withdrawal_id, kind, account
    )
    SELECT format(
        'withdrawal %s (%s): %s %s should be %s, the ledger has %s',
        withdrawal_id,
        coalesce(e.status, (SELECT status FROM withdrawals WHERE id = withdrawal_id)),
        kind,
        account,
        coalesce(e.amount::text, 'no entry'),
        coalesce('[' || a.amounts || ']', 'no entry')
    ) AS violation
    FROM expected AS e
    FULL JOIN actual AS a USING (withdrawal_id, kind, account)
    WHERE e.amount IS DISTINCT FROM a.amount OR a.entries > 1
    """,
)

BANK_TRANSFERS = Check(
    name="bank_transfers_match_withdrawals",
    description="every SUCCESS withdrawal has one PAID bank transfer of its amount to its "
    "account; no FAILED or QUEUED one has a PAID transfer (a PROCESSING one: to reconcile)",
    sql="""
    SELECT format(
        'withdrawal %s (merchant %s) is SUCCESS for %s to %s (bank reference %s) but the bank %s',
        w.id, w.merchant_id, w.amount, w.bank_account, w.bank_reference,
        CASE WHEN t.reference IS NULL THEN 'has no transfer for it'
             ELSE format('transfer is %s %s to %s (bank reference %s)',
                         t.status, t.amount, t.account, t.bank_reference)
        END
    ) AS violation
    FROM withdrawals AS w
    LEFT JOIN settlement_bank_transfers AS t ON t.reference = w.id
    WHERE w.status = 'SUCCESS'
        AND (t.reference IS NULL OR t.status <> 'PAID' OR t.amount <> w.amount
             OR t.account <> w.bank_account OR t.bank_reference IS DISTINCT FROM w.bank_reference)
    UNION ALL
    SELECT format(
        'withdrawal %s (merchant %s) is %s for %s to %s but the bank paid %s to %s',
        w.id, w.merchant_id, w.status, w.amount, w.bank_account, t.amount, t.account
    )
    FROM withdrawals AS w
    JOIN settlement_bank_transfers AS t ON t.reference = w.id
    WHERE t.status = 'PAID'
        AND (w.status IN ('FAILED', 'QUEUED')
             OR (w.status = 'PROCESSING'
                 AND (t.amount <> w.amount OR t.account <> w.bank_account)))
    UNION ALL
    SELECT format(
        'bank transfer %s paid %s to %s but no withdrawal has that id',
        t.reference, t.amount, t.account
    )
    FROM settlement_bank_transfers AS t
    WHERE t.status = 'PAID' AND NOT EXISTS (SELECT FROM withdrawals AS w WHERE w.id = t.reference)
    """,
)

# Settlement's own record must agree with the core's: a final withdrawal has the matching
# final payout (the core releases money only on settlement's recorded refusal), never PENDING.
PAYOUTS = Check(
    name="settlement_payouts_match_withdrawals",
    description="a SUCCESS withdrawal has a PAID payout, a FAILED one a REFUSED payout, each "
    "of its amount; no payout is PENDING for a final withdrawal",
    sql="""
    SELECT CASE
        WHEN w.id IS NULL THEN format(
            'payout %s is PAID for %s but has no withdrawal', p.withdrawal_id, p.amount
        )
        WHEN p.withdrawal_id IS NULL THEN format(
            'withdrawal %s (merchant %s) is %s for %s but settlement has no payout for it',
            w.id, w.merchant_id, w.status, w.amount
        )
        ELSE format(
            'withdrawal %s (merchant %s) is %s for %s but its payout is %s for %s',
            w.id, w.merchant_id, w.status, w.amount, p.status, p.amount
        )
    END AS violation
    FROM withdrawals AS w
    FULL JOIN settlement_payouts AS p ON p.withdrawal_id = w.id
    WHERE (w.id IS NULL AND p.status = 'PAID')
        OR (p.withdrawal_id IS NULL AND w.status IN ('SUCCESS', 'FAILED'))
        OR p.amount <> w.amount
        OR (w.status = 'SUCCESS' AND p.status <> 'PAID')
        OR (w.status = 'FAILED' AND p.status <> 'REFUSED')
    """,
)

# Not a violation: the outcome the core has yet to record.
TO_RECONCILE = Check(
    name="to_reconcile",
    description="PROCESSING withdrawals the bank already paid; `python -m app reconcile` "
    "finishes them",
    sql="""
    SELECT format(
        'withdrawal %s (merchant %s) is PROCESSING for %s; the bank paid it (%s)',
        w.id, w.merchant_id, w.amount, t.bank_reference
    ) AS violation
    FROM withdrawals AS w
    JOIN settlement_bank_transfers AS t ON t.reference = w.id
    WHERE w.status = 'PROCESSING' AND t.status = 'PAID'
        AND t.amount = w.amount AND t.account = w.bank_account
    """,
)
