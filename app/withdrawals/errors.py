from app.errors import AppError, NotFound


class InsufficientMerchantCredit(AppError):
    status, code, title = 409, "INSUFFICIENT_MERCHANT_CREDIT", "Insufficient merchant credit"


class InsufficientPool(AppError):
    status, code, title = 409, "INSUFFICIENT_POOL", "Insufficient pool funds"


class AmountAboveMaximum(AppError):
    status, code, title = 422, "AMOUNT_ABOVE_MAXIMUM", "Amount above the maximum"


class SettlementRefused(AppError):
    status, code, title = 422, "SETTLEMENT_REFUSED", "Payout refused by the bank"


class WithdrawalNotFound(NotFound):
    code, title = "WITHDRAWAL_NOT_FOUND", "Withdrawal not found"
