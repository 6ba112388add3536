"""Run the audit: every check of ARCHITECTURE §5 against one consistent snapshot."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.check import Check
from app.audit.checks import CHECKS
from app.audit.money_out import TO_RECONCILE
from app.audit.report import AuditReport, CheckResult

VIOLATIONS_PER_CHECK = 20
# The request paths' statement timeout is tuned for short queries; the audit scans whole tables.
AUDIT_STATEMENT_TIMEOUT_S = 300


async def run_audit(session: AsyncSession) -> AuditReport:
    """Audit in a REPEATABLE READ, READ ONLY transaction of its own (no transaction open yet)."""
    if session.in_transaction():
        raise RuntimeError(
            "run_audit opens its own snapshot transaction: pass a session with none open"
        )
    # The audit owns its transaction because the isolation level can only be chosen at BEGIN.
    # One snapshot for every query is what keeps the checks from seeing half of a withdrawal
    # that commits between two of them while the system runs.
    async with session.begin():
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        await repository.set_statement_timeout(session, seconds=AUDIT_STATEMENT_TIMEOUT_S)
        return await run_checks(session)


async def run_checks(session: AsyncSession) -> AuditReport:
    """Every check and the totals in the session's current transaction, whatever its isolation."""
    results = [await _run(session, check) for check in CHECKS]
    return AuditReport(
        checks=results,
        totals=await repository.read_totals(session),
        to_reconcile=await _run(session, TO_RECONCILE),
    )


async def _run(session: AsyncSession, check: Check) -> CheckResult:
    violations, count = await repository.find_violations(
        session, sql=check.sql, limit=VIOLATIONS_PER_CHECK
    )
    return CheckResult(
        name=check.name,
        description=check.description,
        violations=violations,
        violation_count=count,
    )
