from fastapi import APIRouter

from app.audit.schemas import AuditOut
from app.audit.service import run_audit
from app.auth.deps import AdminUser
from app.db import SessionDep

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/audit", response_model=AuditOut)
async def audit(_admin: AdminUser, session: SessionDep) -> AuditOut:
    """Check every money invariant on one consistent snapshot (same as `python -m app audit`)."""
    return AuditOut.model_validate(await run_audit(session))
