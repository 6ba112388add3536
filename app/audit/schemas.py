"""The audit report as the admin API returns it (money as "10.00" strings)."""

from pydantic import BaseModel, ConfigDict

from app.money import MoneyOut


class CheckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str
    ok: bool
    violations: list[str]
    violation_count: int


class AuditTotalsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pool_available: MoneyOut
    in_flight: MoneyOut
    paid_out: MoneyOut
    funded: MoneyOut
    withdrawals: dict[str, int]


class AuditOut(BaseModel):
    """Build it with `AuditOut.model_validate(report)`."""

    model_config = ConfigDict(from_attributes=True)

    ok: bool
    checks: list[CheckOut]
    totals: AuditTotalsOut
    to_reconcile: CheckOut  # not violations: PROCESSING withdrawals the bank already paid
