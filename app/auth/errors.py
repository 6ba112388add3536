from app.errors import AppError, Unauthorized


class InvalidToken(Unauthorized):
    code, title = "INVALID_TOKEN", "Invalid token"


class TokenExpired(Unauthorized):
    code, title = "TOKEN_EXPIRED", "Token expired"


class InvalidCredentials(Unauthorized):
    code, title = "INVALID_CREDENTIALS", "Invalid username or password"


class LoginThrottled(AppError):
    status, code, title = 429, "LOGIN_THROTTLED", "Too many failed logins"


class UsernameTaken(AppError):
    status, code, title = 409, "USERNAME_TAKEN", "Username already taken"


class PasswordTooShort(AppError):
    status, code, title = 422, "PASSWORD_TOO_SHORT", "Password too short"


class AdminRequired(AppError):
    status, code, title = 403, "ADMIN_REQUIRED", "Admin role required"


class MerchantRequired(AppError):
    status, code, title = 403, "MERCHANT_REQUIRED", "Merchant account required"


class RefreshTokenReused(InvalidToken):
    code, title = "REFRESH_TOKEN_REUSED", "Refresh token already used"

    def __init__(self) -> None:
        super().__init__("this refresh token was already used; every token of its login is revoked")
