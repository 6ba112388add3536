"""The audit's reads: violations of one check, and the totals."""

from decimal import Decimal

from sqlalchemy import String, column, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.report import AuditTotals
from app.models import WithdrawalStatus

_TOTALS = text(
    """
    SELECT
        (SELECT coalesce(sum(available), 0.00) FROM credit_pool) AS pool_available,
        coalesce(sum(amount) FILTER (WHERE account = 'IN_FLIGHT'), 0.00) AS in_flight,
        coalesce(sum(amount) FILTER (WHERE account = 'PAID_OUT'), 0.00) AS paid_out,
        0 - coalesce(sum(amount) FILTER (WHERE account = 'FUNDING'), 0.00) AS funded
    FROM ledger_entries
    """
)
_WITHDRAWAL_COUNTS = text("SELECT status, count(*) AS n FROM withdrawals GROUP BY status")


async def find_violations(session: AsyncSession, *, sql: str, limit: int) -> tuple[list[str], int]:
    """The first `limit` violations a check's query returns, and how many there are in all."""
    found = text(sql).columns(column("violation", String)).subquery("found")
    rows = await session.execute(
        select(found.c.violation, func.count().over().label("total"))
        .order_by(found.c.violation)
        .limit(limit)
    )
    found_rows = rows.all()
    return [row.violation for row in found_rows], (found_rows[0].total if found_rows else 0)


async def set_statement_timeout(session: AsyncSession, *, seconds: int) -> None:
    """Override the connection's statement timeout until the current transaction ends."""
    # set_config(..., true) is SET LOCAL with a bind parameter.
    await session.execute(
        text("SELECT set_config('statement_timeout', :value, true)"), {"value": f"{seconds}s"}
    )


async def read_totals(session: AsyncSession) -> AuditTotals:
    """Pool, in flight, paid out and funded amounts, and the number of withdrawals by status."""
    money = (await session.execute(_TOTALS)).one()
    counts = dict.fromkeys(WithdrawalStatus, 0) | {
        status: n for status, n in await session.execute(_WITHDRAWAL_COUNTS)
    }
    return AuditTotals(
        pool_available=Decimal(money.pool_available),
        in_flight=Decimal(money.in_flight),
        paid_out=Decimal(money.paid_out),
        funded=Decimal(money.funded),
        withdrawals={str(status): n for status, n in counts.items()},
    )
