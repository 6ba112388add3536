from app.errors import AppError, NotFound


class MerchantNotFound(NotFound):
    code, title = "MERCHANT_NOT_FOUND", "Merchant not found"


class CreditLimitBelowUtilized(AppError):
    status, code, title = 409, "CREDIT_LIMIT_BELOW_UTILIZED", "Credit limit below utilized credit"


class InvalidStatusTransition(AppError):
    status, code, title = 409, "INVALID_STATUS_TRANSITION", "Merchant status does not allow this"


class MerchantNotApproved(AppError):
    status, code, title = 403, "MERCHANT_NOT_APPROVED", "Merchant not approved"
