from app.errors import AppError


class InvalidAmount(AppError):
    status, code, title = 422, "INVALID_AMOUNT", "Invalid amount"
