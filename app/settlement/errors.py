"""Settlement's domain errors; each becomes problem+json with a stable code."""

from app.errors import AppError, Conflict, Forbidden, NotFound, ServiceUnavailable


class InternalTokenMissing(AppError):
    # Not app.errors.Unauthorized: that one announces a Bearer scheme, this is a custom header.
    status, code, title = 401, "INTERNAL_TOKEN_MISSING", "Internal token missing"


class InternalTokenInvalid(Forbidden):
    code, title = "INTERNAL_TOKEN_INVALID", "Internal token invalid"


class PayoutMismatch(Conflict):
    code, title = "PAYOUT_MISMATCH", "Payout differs from the first request for this withdrawal"


class PayoutNotFound(NotFound):
    code, title = "PAYOUT_NOT_FOUND", "Payout not found"


class BankUnavailableError(ServiceUnavailable):
    code, title = "BANK_UNAVAILABLE", "Bank unavailable"


class BatchTooLarge(AppError):
    status, code, title = 422, "BATCH_TOO_LARGE", "Too many orders in one batch"
