from app.errors import AppError


class InvalidAmount(AppError):
    status, code, title = 422, "INVALID_AMOUNT", "Invalid amount"


class PoolLimitExceeded(AppError):
    status, code, title = 422, "POOL_LIMIT_EXCEEDED", "Pool limit exceeded"


class TopUpReferenceUsed(AppError):
    status, code, title = 409, "TOPUP_REFERENCE_USED", "Top-up reference already used"
