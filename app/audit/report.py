"""What an audit found: one result per check, the totals, and a text rendering."""

from dataclasses import dataclass
from decimal import Decimal

from app.money import format_amount


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    description: str
    violations: list[str]  # the first few, ordered by their text
    violation_count: int  # all of them; may exceed len(violations)

    @property
    def ok(self) -> bool:
        return self.violation_count == 0


@dataclass(frozen=True, slots=True)
class AuditTotals:
    pool_available: Decimal
    in_flight: Decimal
    paid_out: Decimal
    funded: Decimal
    withdrawals: dict[str, int]  # count by status, every known status present


@dataclass(frozen=True, slots=True)
class AuditReport:
    checks: list[CheckResult]
    totals: AuditTotals
    # Not violations: PROCESSING withdrawals the bank already paid (`python -m app reconcile`).
    to_reconcile: CheckResult

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def check(self, name: str) -> CheckResult:
        """The result of the check with this name."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def render(self) -> str:
        """A plain-text report: a verdict, one line per check, violations indented, totals."""
        verdict = (
            "PASS" if self.ok else f"FAIL ({len(self.failed)} of {len(self.checks)} checks failed)"
        )
        lines = [f"Creditpool audit: {verdict}"]
        width = max((len(check.name) for check in self.checks), default=0)
        for check in self.checks:
            status = "PASS" if check.ok else "FAIL"
            lines.append(f"  {status}  {check.name:<{width}}  {check.description}")
            lines.extend(f"          {violation}" for violation in check.violations)
            if (hidden := check.violation_count - len(check.violations)) > 0:
                lines.append(f"          ... and {hidden} more")
        pending = self.to_reconcile
        if pending.violation_count:
            lines.append(f"To reconcile: {pending.violation_count} ({pending.description})")
            lines.extend(f"          {item}" for item in pending.violations)
            if (hidden := pending.violation_count - len(pending.violations)) > 0:
                lines.append(f"          ... and {hidden} more")
        t = self.totals
        lines.append(
            f"Totals: pool available {format_amount(t.pool_available)}, "
            f"in flight {format_amount(t.in_flight)}, paid out {format_amount(t.paid_out)}, "
            f"funded {format_amount(t.funded)}"
        )
        counts = ", ".join(f"{status} {count}" for status, count in t.withdrawals.items())
        lines.append(f"Withdrawals: {counts}")
        return "\n".join(lines)
